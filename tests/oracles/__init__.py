"""Brute-force oracles: what the server must answer, computed from a catalog's SOURCE JSON files.

Every answer comes from testing each item or collection dict one by one in plain Python
(shapely for geometry, exact integer-microsecond times), never from the server's index,
parser or sort keys. So no module here imports ``server`` code, directly or through
another test module: keep it so, or a server bug would be copied into the expected answers.

- search.py: the catalog walk and the core STAC API - Item Search parameters (bbox,
  intersects, datetime, ids, collections) over items;
- records.py: the view of an item or collection that the extensions below evaluate;
- cql2.py: the Filter Extension (CQL2 JSON, three-valued logic);
- query.py: the legacy Query Extension;
- freetext.py: the Free Text Extension (``q``, basic and advanced);
- sort.py and fields.py: the Sort and Fields Extensions;
- expected.py: a whole item search or collection search, combined and ordered;
- synthetic.py: a seeded heterogeneous catalog to run all of it on;
- random_inputs.py: seeded random filters, ``q`` and sortby drawn from the records' values.
"""
