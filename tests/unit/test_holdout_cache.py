"""The warm-instance caches of store/cohort_cache.py: TTL reloads, invalidation, one load at a time, LRU."""
import threading
import time

from offerlab.store.cohort_cache import RecentSet, TtlCache


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_loads_once_per_ttl_and_again_after_it():
    clock, calls = FakeClock(), []
    cache = TtlCache(lambda: (calls.append(1), (len(calls),))[1], ttl=30, clock=clock)
    assert cache.get() == (1,) and cache.get() == (1,)
    clock.now += 29.9
    assert cache.get() == (1,) and cache.loads == 1
    clock.now += 0.2
    assert cache.get() == (2,) and cache.loads == 2


def test_invalidate_forces_the_next_call_to_reload():
    clock, calls = FakeClock(), []
    cache = TtlCache(lambda: (calls.append(1), (len(calls),))[1], ttl=30, clock=clock)
    cache.get()
    cache.invalidate()
    assert cache.get() == (2,)


def test_concurrent_callers_of_a_cold_cache_share_one_load():
    started = threading.Event()

    def slow_loader():
        started.set()
        time.sleep(0.2)
        return ("cohorts",)

    cache = TtlCache(slow_loader, ttl=30)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [("cohorts",)] * 8 and cache.loads == 1


def test_recent_set_evicts_the_least_recently_used():
    recent = RecentSet(max_size=2)
    recent.add("a")
    recent.add("b")
    assert "a" in recent  # touching a makes b the oldest
    recent.add("c")
    assert "a" in recent and "c" in recent and "b" not in recent and len(recent) == 2
