# <Dockerfile>.dockerignore next to the Dockerfile is used instead of the context's .dockerignore.
FROM {{REGISTRY}}/base/busybox:1
COPY . /ctx/
