"""CPython's figures for the comparisons in Program.cs; prints one JSON object.

Run: python3 queue_bench.py [--small 200000] [--rounds 20000] [--mib 200]
"""
import json
import multiprocessing as mp
import sys
import time


def producer(q, go, n, start):
    go.wait()
    for i in range(start, start + n):
        q.put(i)


def consumer(q, done):
    count = 0
    while True:
        item = q.get()
        if item is None:
            break
        count += 1
    done.put(count)


def echo(conn, rounds):
    for _ in range(rounds):
        conn.send(conn.recv())


def big_producer(q, go, n, size):
    payload = bytes(size)
    go.wait()
    for _ in range(n):
        q.put(payload)


def one_to_one(ctx, n):
    q, go = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=producer, args=(q, go, n, 0))
    p.start()
    time.sleep(0.2)
    start = time.perf_counter()
    go.set()
    for _ in range(n):
        q.get()
    elapsed = time.perf_counter() - start
    p.join()
    return n / elapsed


def two_to_two(ctx, n):
    q, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    producers = [ctx.Process(target=producer, args=(q, go, n, k * n)) for k in range(2)]
    consumers = [ctx.Process(target=consumer, args=(q, done)) for _ in range(2)]
    for w in producers + consumers:
        w.start()
    time.sleep(0.3)
    start = time.perf_counter()
    go.set()
    for p in producers:
        p.join()
    q.put(None)
    q.put(None)
    total = done.get() + done.get()
    elapsed = time.perf_counter() - start
    for c in consumers:
        c.join()
    assert total == 2 * n
    return 2 * n / elapsed


def ping_pong_us(ctx, rounds, warmup=2000):
    left, right = ctx.Pipe()
    p = ctx.Process(target=echo, args=(right, rounds + warmup))
    p.start()
    for i in range(warmup):
        left.send(i)
        left.recv()
    start = time.perf_counter()
    for i in range(rounds):
        left.send(i)
        left.recv()
    elapsed = time.perf_counter() - start
    p.join()
    return elapsed / rounds * 1e6


def big_items_mib_s(ctx, mib):
    size = 1 << 20
    q, go = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=big_producer, args=(q, go, mib, size))
    p.start()
    time.sleep(0.2)
    start = time.perf_counter()
    go.set()
    for _ in range(mib):
        q.get()
    elapsed = time.perf_counter() - start
    p.join()
    return mib / elapsed


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    small = int(args.get("--small", 200000))
    rounds = int(args.get("--rounds", 20000))
    mib = int(args.get("--mib", 200))
    ctx = mp.get_context("fork")
    print(json.dumps({
        "python": sys.version.split()[0],
        "one_to_one_msgs_s": one_to_one(ctx, small),
        "two_to_two_msgs_s": two_to_two(ctx, small // 2),
        "ping_pong_us": ping_pong_us(ctx, rounds),
        "big_items_mib_s": big_items_mib_s(ctx, mib),
    }))


if __name__ == "__main__":
    main()
