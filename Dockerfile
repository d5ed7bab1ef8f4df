# stac-static-api: the STAC API over static catalogs.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
RUN pip install --no-cache-dir . && useradd --system --no-create-home stac
USER stac

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/_mgmt/ready', timeout=2).status == 200 else 1)"

# With no ROOT it serves the sample catalog bundled in the package.
ENTRYPOINT ["stac-static-api", "serve", "--host", "0.0.0.0", "--port", "8000"]
