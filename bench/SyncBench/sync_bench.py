"""CPython's figures for the comparisons in Program.cs; prints one JSON object.

Run: python3 sync_bench.py [--share-mib 256]
"""
import json
import multiprocessing as mp
import statistics
import sys
import time
from multiprocessing import shared_memory

PAGE = 4096


def ping_pong(ping, pong, rounds):
    for _ in range(rounds):
        ping.acquire()
        pong.release()


def touch_pages(buf):
    # One byte per page: every page is faulted in, as a consumer of the data would.
    return sum(buf[i] for i in range(0, len(buf), PAGE))


def receiver(conn):
    while True:
        kind, payload = conn.recv()
        if kind == "stop":
            return
        if kind == "bytes":
            total = touch_pages(payload)
        else:
            shm = shared_memory.SharedMemory(name=payload)
            total = touch_pages(shm.buf)
            shm.close()
        conn.send(total)


def round_trip_us(ctx, rounds=20000, warmup=2000):
    ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)
    worker = ctx.Process(target=ping_pong, args=(ping, pong, rounds + warmup))
    worker.start()
    for _ in range(warmup):
        ping.release()
        pong.acquire()
    start = time.perf_counter()
    for _ in range(rounds):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    worker.join()
    return elapsed / rounds * 1e6


def uncontended_ns(ctx, n=1_000_000):
    lock = ctx.Lock()
    for _ in range(10000):
        lock.acquire()
        lock.release()
    start = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - start) / n * 1e9


def share_ms(ctx, mib, repeats=5):
    size = mib * 1024 * 1024
    data = bytes(range(256)) * (size // 256)
    parent, child = ctx.Pipe()
    worker = ctx.Process(target=receiver, args=(child,))
    worker.start()
    results = {}
    # pickling: the bytes themselves travel through the pipe
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parent.send(("bytes", data))
        parent.recv()
        times.append((time.perf_counter() - start) * 1e3)
    results["pickle"] = statistics.median(times)
    # shared_memory: the data is in a block; only its name travels
    shm = shared_memory.SharedMemory(create=True, size=size)
    shm.buf[:size] = data
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parent.send(("shm", shm.name))
        parent.recv()
        times.append((time.perf_counter() - start) * 1e3)
    results["shared_memory"] = statistics.median(times)
    parent.send(("stop", None))
    worker.join()
    shm.close()
    shm.unlink()
    return results


def main():
    mib = 256
    if "--share-mib" in sys.argv:
        mib = int(sys.argv[sys.argv.index("--share-mib") + 1])
    ctx = mp.get_context("spawn")  # what .NET can do (no fork); also the default on macOS and Windows
    share = share_ms(ctx, mib)
    print(json.dumps({
        "python": sys.version.split()[0],
        "lock_round_trip_us": round_trip_us(ctx),
        "lock_uncontended_ns": uncontended_ns(ctx),
        "share_pickle_ms": share["pickle"],
        "share_shared_memory_ms": share["shared_memory"],
        "share_mib": mib,
    }))


if __name__ == "__main__":
    main()
