# The production image (render.yaml): gunicorn behind nginx, started by deploy/serve.
FROM python:3.11.7-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The database, stored images and the secret key live here: mount a persistent disk on it.
VOLUME /app/instance
ENV DERMALENS_ENV=production PYTHON=python PORT=10000
EXPOSE 10000
CMD ["deploy/serve"]
