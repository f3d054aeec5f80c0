"""The execution worker: `coderoom worker`, or inside the API with `serve --with-worker`."""
