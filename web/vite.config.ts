import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// Hashed file names under /assets (served with a one-year immutable cache by coderoom),
// no inline scripts or styles (the CSP forbids inline script), no runtime CDN.
export default defineConfig({
  plugins: [preact({ prefreshEnabled: false, devToolsEnabled: false })],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: { "/api": { target: "http://127.0.0.1:4000", ws: true } },
  },
});
