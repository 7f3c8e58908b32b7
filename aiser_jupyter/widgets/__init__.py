"""Interactive views over Session objects: charts, result tables, connections, schema.

Each widget draws what a Session method returns and calls Session methods for what
it does; none holds logic of its own. The front-end code is bundled at build time
into ``aiser_jupyter/static`` (see ``js/``), so nothing is fetched from a CDN.
"""
