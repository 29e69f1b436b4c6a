-- Line items with their order, customer, nation, region and net revenue.
SELECT l.*, o.o_orderdate, o.o_orderpriority, c.c_custkey, c.c_name, c.c_mktsegment,
       n.n_name, r.r_name,
       l.l_extendedprice * (1 - l.l_discount) AS revenue
FROM raw.lineitem l
JOIN raw.orders o   ON l.l_orderkey = o.o_orderkey
JOIN raw.customer c ON o.o_custkey = c.c_custkey
JOIN raw.nation n   ON c.c_nationkey = n.n_nationkey
JOIN raw.region r   ON n.n_regionkey = r.r_regionkey;
