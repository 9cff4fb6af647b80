import { defineConfig } from "vite";

// A static single-page app: Firebase Hosting serves dist/ (firebase.json "hosting.public").
// No plugin: Preact's JSX is compiled by Vite's own transform (tsconfig "jsxImportSource": "preact").
export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
});
