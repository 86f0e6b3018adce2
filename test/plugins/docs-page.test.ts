import { existsSync } from 'node:fs'
import t from 'tap'
import type { Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { DOCS_PATH } from '../../src/plugins/docs-page.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { buildTestApp, startSimulator, testConfig } from '../helper.js'

// Debian's chromium package (.ci/run installs it); CHROMIUM_PATH points elsewhere on other machines.
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
]
// Parsing Swagger UI's bundle takes a second or two; much longer on a machine busy with other tests.
const RENDER_TIMEOUT_MS = 30_000
const OPERATION_SUMMARY = 'List the WhatsApp phone numbers of a tenant'
const OPERATION = '#operations-tenants-listTenantPhones'

interface LoadedPage {
  page: Page
  origin: string
  /** Every URL the page asked for, data: URLs aside (they are not requests). */
  requested: string[]
  /** Console errors (a refused Content-Security-Policy directive is one) and uncaught exceptions. */
  errors: string[]
}

async function launchChromium (t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: RENDER_TIMEOUT_MS })
  t.teardown(() => browser.close())
  return browser
}

/** The real app listening on loopback, and its docs page loaded in a fresh headless Chromium profile. */
async function loadDocsPage (t: Test): Promise<LoadedPage> {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launchChromium(t)
  const page = await browser.newPage()
  const requested: string[] = []
  const errors: string[] = []
  page.on('request', (request) => { if (!request.url().startsWith('data:')) requested.push(request.url()) })
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (error) => { errors.push(error.message) })
  await page.goto(`${origin}${DOCS_PATH}`)
  await page.getByText(OPERATION_SUMMARY).waitFor({ timeout: RENDER_TIMEOUT_MS })
  return { page, origin, requested, errors }
}

t.test('Chromium is installed where the docs test looks for it', async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} exists: install Debian's chromium package or set CHROMIUM_PATH`)
})

t.test('the docs page renders the operation, its problems and both credential schemes from this origin only', { skip: !existsSync(CHROMIUM) }, async (t) => {
  const { page, origin, requested, errors } = await loadDocsPage(t)
  const operation = page.locator(OPERATION)
  t.ok(await operation.getByText('listTenantPhones').isVisible(), 'the operation is listed with its operationId')

  await operation.getByText(OPERATION_SUMMARY).click()
  const statuses = operation.locator('.responses-table .response .response-col_status')
  await statuses.first().waitFor({ timeout: RENDER_TIMEOUT_MS })
  const shown = (await statuses.allInnerTexts()).map((text) => text.trim())
  for (const status of ['200', '401', '403', '404', '429', '503']) t.ok(shown.includes(status), `${status} is shown`)
  t.ok(await operation.getByText('/problems/rate-limited').first().isVisible(), 'a problem type is shown')

  await page.getByRole('button', { name: 'Authorize' }).first().click()
  const dialog = page.locator('.dialog-ux .modal-ux')
  await dialog.waitFor({ timeout: RENDER_TIMEOUT_MS })
  const schemes = await dialog.innerText()
  t.match(schemes, /apiKey\s*\(apiKey\)/, 'the API key scheme is shown')
  t.match(schemes, /X-API-Key/, 'with its header')
  t.match(schemes, /bearer\s*\(http, Bearer\)/, 'the bearer scheme is shown')

  t.ok(requested.length > 3, 'the page loaded its assets')
  t.same(requested.filter((url) => new URL(url).origin !== origin), [], 'no request leaves for another origin (no CDN)')
  t.same(errors, [], 'no console error: every asset had its type under nosniff, and the CSP refused nothing')
})

t.test('the docs page and its assets are public, typed for nosniff, and under a self-only Content-Security-Policy', async (t) => {
  const simulator = await startSimulator(t)
  const keys = writeApiKeyFile(t, [issue('docs-reader', ['demo-shop']).entry])
  const { app } = await buildTestApp(t, testConfig(simulator, apiKeyEnv(keys)))
  const page = await app.inject(DOCS_PATH)
  t.equal(page.statusCode, 200, 'no credentials needed, even with authentication on')
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'none'/)
  t.match(csp, /script-src 'self'(;|$)/, 'scripts from this origin only, none inline')
  t.match(csp, /style-src 'self'(;|$)/, 'styles from this origin only, none inline')
  t.match(csp, /frame-ancestors 'none'/)
  t.notMatch(csp, /https:|unsafe-/, 'no other origin, nothing unsafe')

  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '')
  t.ok(assets.some((asset) => asset.endsWith('.js')) && assets.some((asset) => asset.endsWith('.css')), 'the page names its scripts and styles')
  for (const asset of assets) {
    const answer = await app.inject(asset)
    t.equal(answer.statusCode, 200, `${asset} is served`)
    t.equal(answer.headers['x-content-type-options'], 'nosniff')
    const expected = asset.endsWith('.js') ? /^application\/javascript/ : asset.endsWith('.css') ? /^text\/css/ : /^image\//
    t.match(answer.headers['content-type'], expected, `${asset} has its content type`)
  }
})
