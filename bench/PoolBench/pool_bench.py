"""CPython's side of bench/PoolBench: the same workloads with multiprocessing, printed as JSON."""
import json
import math
import multiprocessing as mp
import statistics
import sys
import time


def inc(x):
    return x + 1


def one():
    return 1


class Shape:
    __slots__ = ()


class Circle(Shape):
    __slots__ = ("r",)

    def __init__(self, r):
        self.r = r


class Rect(Shape):
    __slots__ = ("w", "h")

    def __init__(self, w, h):
        self.w = w
        self.h = h


def area(s):
    if isinstance(s, Circle):
        return math.pi * s.r * s.r
    if isinstance(s, Rect):
        return s.w * s.h
    return 0.0


def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def count_primes(span):
    start, end = span
    return sum(1 for n in range(start, end) if is_prime(n))


def nothing():
    pass


def median_of(reps, fn):
    return statistics.median(fn() for _ in range(reps))


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(method, reps):
    ctx = mp.get_context(method)
    out = {}

    def start_pool():
        t = time.perf_counter()
        with ctx.Pool(2) as p:
            p.apply(one)
            return time.perf_counter() - t

    out["pool_start_ms"] = median_of(reps, start_pool) * 1000

    def process_roundtrip():
        t = time.perf_counter()
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
        return time.perf_counter() - t

    out["process_ms"] = median_of(reps, process_roundtrip) * 1000

    with ctx.Pool(2) as p:
        p.map(inc, range(1000))
        items = list(range(1_000_000))
        out["map_items_per_s"] = 1_000_000 / median_of(reps, lambda: timed(lambda: p.map(inc, items)))
        small = list(range(20_000))
        out["map_chunk1_items_per_s"] = 20_000 / median_of(reps, lambda: timed(lambda: p.map(inc, small, chunksize=1)))
        shapes = [Circle(i % 7 + 1) if i % 2 == 0 else Rect(i % 5 + 1, i % 3 + 1) for i in range(100_000)]
        out["map_shapes_per_s"] = 100_000 / median_of(reps, lambda: timed(lambda: p.map(area, shapes)))
        n = 2000
        out["apply_us"] = median_of(reps, lambda: timed(lambda: [p.apply(one) for _ in range(n)])) / n * 1e6
    return out


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    result = {m: measure(m, reps) for m in ("fork", "spawn")}
    print(json.dumps(result))
