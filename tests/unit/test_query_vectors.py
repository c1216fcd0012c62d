"""What retrieve keeps per tenant of the queries it served: bounded at both levels, least recently
used first out, and a tenant never served another tenant's entry."""

from services.retrieve.query_vectors import QueryVectorCache, TenantLRU, query_text

VECTOR = [0.25, -0.5, 0.125]


def test_an_entry_is_served_to_its_own_tenant_and_model_only():
    cache = QueryVectorCache(per_tenant=4, tenants=4)
    cache.put("acme", "model-a", "otters", VECTOR)
    assert cache.get("acme", "model-a", "otters") == VECTOR
    assert cache.get("globex", "model-a", "otters") is None
    assert cache.get("acme", "model-b", "otters") is None
    assert cache.get("acme", "model-a", "Otters") is None


def test_each_tenant_keeps_its_most_recently_used_queries():
    cache: TenantLRU[str, list[float]] = TenantLRU(per_tenant=2, tenants=4)
    cache.put("acme", "one", VECTOR)
    cache.put("acme", "two", VECTOR)
    assert cache.get("acme", "one") == VECTOR  # "two" is now the least recently used
    cache.put("acme", "three", VECTOR)
    assert [cache.get("acme", q) is not None for q in ("one", "two", "three")] == [True, False, True]
    cache.put("globex", "one", VECTOR)  # another tenant's entries do not push acme's out
    assert len(cache) == 3 and cache.get("acme", "one") == VECTOR


def test_the_least_recently_used_tenant_leaves_first():
    cache: TenantLRU[str, list[float]] = TenantLRU(per_tenant=2, tenants=2)
    cache.put("acme", "q", VECTOR)
    cache.put("globex", "q", VECTOR)
    assert cache.get("acme", "q") == VECTOR  # globex is now the least recently used
    cache.put("initech", "q", VECTOR)
    assert [cache.get(t, "q") is not None for t in ("acme", "globex", "initech")] == [True, False, True]
    assert len(cache) == 2


def test_a_cache_of_size_zero_keeps_nothing():
    cache = QueryVectorCache(per_tenant=0, tenants=4)
    cache.put("acme", "m", "q", VECTOR)
    assert cache.get("acme", "m", "q") is None and len(cache) == 0


def test_a_query_is_keyed_by_its_words_not_its_spacing():
    assert query_text("  Why do\tsea   otters\nhold hands? ") == "Why do sea otters hold hands?"
