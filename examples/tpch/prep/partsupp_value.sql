-- Each part a supplier stocks, with the value of that stock.
SELECT ps.ps_partkey, ps.ps_suppkey, p.p_name, p.p_brand, p.p_type, s.s_name, s.s_nationkey,
       ps.ps_availqty, ps.ps_supplycost,
       ps.ps_supplycost * ps.ps_availqty AS stock_value
FROM raw.partsupp ps
JOIN raw.part p     ON ps.ps_partkey = p.p_partkey
JOIN raw.supplier s ON ps.ps_suppkey = s.s_suppkey;
