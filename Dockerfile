# syntax=docker/dockerfile:1
# coderoom: one image for the API (`serve`), the worker (`worker`) and `migrate`.
# Build: docker build -t coderoom .   Extra runtimes: --build-arg EXTRA_RUNTIMES="default-jdk-headless rustc"
# The sandbox needs privileges a default container does not have: see docs/DEPLOYMENT.md.

FROM debian:12-slim AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Versions are pinned by constraints.txt (-c), which hadolint cannot see.
# hadolint ignore=DL3013
RUN python3 -m venv /opt/coderoom \
 && /opt/coderoom/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/coderoom/bin/pip install --no-cache-dir -c constraints.txt .

FROM debian:12-slim AS runtime
ARG EXTRA_RUNTIMES=""
# bubblewrap + libseccomp2: the sandbox. The rest: the default languages (Python, JavaScript,
# C, C++, Bash, Perl); Debian's own packages, upgraded with the base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 bubblewrap libseccomp2 ca-certificates \
      nodejs gcc g++ libc6-dev perl bash ${EXTRA_RUNTIMES} \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/coderoom --create-home coderoom
COPY --from=build /opt/coderoom /opt/coderoom
ENV PATH=/opt/coderoom/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=4000 \
    LOG_FORMAT=json
WORKDIR /var/lib/coderoom
# Non-root: the API never needs more, and the worker's sandbox uses unprivileged user
# namespaces (see docs/DEPLOYMENT.md for what the container must allow).
USER 10001:10001
EXPOSE 4000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/api/v1/health/live', timeout=2)"]
ENTRYPOINT ["coderoom"]
CMD ["serve"]
