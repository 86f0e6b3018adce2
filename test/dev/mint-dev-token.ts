/**
 * `npm run dev:token -- [--sub alice] [--tenants demo-shop,demo-bank|*] [--scope phones:read] [--ttl 3600]`:
 * prints a token of the dev identity provider that `npm run dev` accepts as `Authorization: Bearer`.
 */
import { parseArgs } from 'node:util'
import { mintDevToken } from './dev-identity-provider.js'

const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'dev-user' },
    tenants: { type: 'string', default: 'demo-shop' },
    scope: { type: 'string', default: 'phones:read' },
    ttl: { type: 'string', default: '3600' },
  },
})
const appkeys = values.tenants.trim() === '*' ? '*' : values.tenants.split(',').map((appkey) => appkey.trim())
process.stdout.write(`${await mintDevToken({ sub: values.sub, appkeys, scope: values.scope, ttlSeconds: Number(values.ttl) })}\n`)
