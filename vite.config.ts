/** Builds the renderer (src-renderer → dist/renderer), the one bundle both Electron and `serve` show. */
import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('./src-renderer', import.meta.url)),
  // Relative asset URLs work under both app://logitscope/ and http://127.0.0.1:P/.
  base: './',
  // The Svelte defaults suffice (TypeScript in <script lang="ts"> needs no preprocessor in Svelte 5).
  plugins: [svelte({ configFile: false })],
  build: {
    outDir: fileURLToPath(new URL('./dist/renderer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // chart.js is most of the bundle; one file is fine for a local app.
    chunkSizeWarningLimit: 1000,
  },
});
