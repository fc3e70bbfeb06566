"""CPython's multiprocessing.Manager, measured the same way as ManagerBench's .NET side.

Prints one JSON object. Run by `dotnet run -c Release --project bench/ManagerBench`, or alone:
    python3 bench/ManagerBench/manager_bench.py [dict_ops] [increments_per_worker]
"""
import json
import multiprocessing as mp
import platform
import sys
import time


def counter_worker(lock, value, ready, go, times, increments):
    ready.put(1)
    go.get()
    start = time.monotonic()
    for _ in range(increments):
        with lock:
            value.value = value.value + 1
    times.put((start, time.monotonic()))


def main():
    dict_ops = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    increments = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    workers = 4
    with mp.Manager() as manager:
        d = manager.dict()
        for i in range(1000):  # warm up
            d[i] = i
        start = time.perf_counter()
        for i in range(dict_ops):
            d[i % 1000] = i
        dict_seconds = time.perf_counter() - start

        lock, value = manager.Lock(), manager.Value("i", 0)
        ready, go, times = manager.Queue(), manager.Queue(), manager.Queue()
        procs = [mp.Process(target=counter_worker, args=(lock, value, ready, go, times, increments)) for _ in range(workers)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get()
        for _ in procs:
            go.put(1)
        spans = [times.get() for _ in procs]
        for p in procs:
            p.join()
        counter_seconds = max(e for _, e in spans) - min(s for s, _ in spans)
        print(json.dumps({
            "python": platform.python_version(),
            "start_method": mp.get_start_method(),
            "dict_set_ops_per_s": dict_ops / dict_seconds,
            "counter_increments_per_s": workers * increments / counter_seconds,
            "counter_total": value.value,
        }))


if __name__ == "__main__":
    main()
