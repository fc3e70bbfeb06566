"""CPython's side of PoolBench's first-call rows: one scenario, once, in this fresh process.
Usage: python3 first_calls.py SCENARIO METHOD   (SCENARIO: apply | map | chunk1; METHOD: fork | spawn)"""
import multiprocessing as mp
import sys
import time


def inc(x):
    return x + 1


def one():
    return 1


if __name__ == "__main__":
    scenario, method = sys.argv[1], sys.argv[2]
    with mp.get_context(method).Pool(2) as pool:
        t = time.perf_counter()
        if scenario == "apply":
            for _ in range(5000):
                pool.apply(one)
            print((time.perf_counter() - t) / 5000 * 1e6)
        elif scenario == "map":
            pool.map(inc, range(1_000_000))
            print(1_000_000 / (time.perf_counter() - t))
        elif scenario == "chunk1":
            pool.map(inc, range(20_000), chunksize=1)
            print(20_000 / (time.perf_counter() - t))
