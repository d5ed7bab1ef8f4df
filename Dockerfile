# stac-static-api: the STAC API over static catalogs.
#
#   docker build -t stac-static-api .
#   docker run -p 8000:8000 stac-static-api                      # the bundled sample catalog
#   docker run -p 8000:8000 stac-static-api https://example.com/stac/catalog.json
#   docker run -p 9000:9000 -e STAC_STATIC_PORT=9000 stac-static-api s3://bucket/stac/catalog.json
#
# Build arguments: BASE_IMAGE, any image with Python >= 3.11 and its venv module (the default,
# or e.g. a plain Debian bookworm with python3-venv); EXTRAS, the package's extras installed
# (s3: s3:// roots through boto3; parquet: stac-geoparquet roots and `export`; EXTRAS=s3 keeps
# the image ~400 MB smaller). The health check is compose's (docker-compose.yml says why).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG EXTRAS=s3,parquet
WORKDIR /app
# A virtualenv: a base whose Python is the distribution's refuses pip installs into it
# (PEP 668, externally-managed-environment), and the venv keeps the image's tools apart.
# The dependencies first, from pyproject.toml alone (a stand-in package gets them installed,
# then goes): this layer is rebuilt when pyproject.toml changes, not at every change of code.
# Behind a package mirror or a TLS-intercepting proxy, give pip its configuration for this
# step only, as build secrets (mounted for this RUN, never written into a layer):
#   docker build --secret id=pip.conf,src=my-pip.conf --secret id=ca.crt,src=my-ca.pem .
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    set -eu; \
    if [ -s /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi; \
    if [ -s /run/secrets/ca.crt ]; then export PIP_CERT=/run/secrets/ca.crt; fi; \
    python3 -m venv /opt/venv; \
    mkdir server; touch server/__init__.py README.md; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "setuptools>=68" ".[${EXTRAS}]"; \
    /opt/venv/bin/pip uninstall --yes --quiet stac-static-api; \
    rm -rf server README.md build ./*.egg-info; \
    useradd --system --no-create-home --shell /usr/sbin/nologin stac
# Then the package itself: no download (its dependencies and build backend are in the venv).
COPY README.md ./
COPY server ./server
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

# Every setting is an environment variable (README, Settings): the entrypoint fixes none, so
# STAC_STATIC_PORT / STAC_STATIC_HOST given to `docker run -e` or compose's `environment`
# apply. A container listens on all its interfaces by default (the port is published or not
# by whoever runs it); set STAC_STATIC_HOST=127.0.0.1 to keep it to the container itself.
# The user has no home folder: a replica's snapshot copy (`--index URL`) goes under /tmp, or
# a volume given as STAC_STATIC_INDEX_CACHE_DIR (kept across restarts: a 304 instead of a download).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STAC_STATIC_HOST=0.0.0.0 \
    STAC_STATIC_INDEX_CACHE_DIR=/tmp/stac-static-api
# The code and the virtualenv belong to root: the server, run as `stac`, cannot change them.
USER stac
EXPOSE 8000
# With no ROOT it serves the sample catalog bundled in the package; arguments after the image
# name are `serve`'s (roots, --reload-interval, ...).
ENTRYPOINT ["stac-static-api", "serve"]
