// Shared vitest settings: workspace packages resolve to their TypeScript sources,
// so tests run against the code as it is, without a build in between.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@cakemail-smtp/tls': src('./packages/tls/src/index.ts'),
      '@cakemail-smtp/smtp-core': src('./packages/smtp-core/src/index.ts'),
      '@cakemail-smtp/cakemail': src('./packages/cakemail/src/index.ts'),
      '@cakemail-smtp/testkit': src('./packages/testkit/src/index.ts'),
      '@cakemail-smtp/queue': src('./packages/queue/src/index.ts'),
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
