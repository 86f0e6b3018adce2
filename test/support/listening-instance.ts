import type { Test } from 'tap'
import { buildTestApp, phonesUrl, type TestApp } from '../helper.js'

export interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

export interface Instance extends TestApp {
  origin: string
  get (appkey: string): Promise<Answer>
  refresh (appkey: string): Promise<Answer>
}

/** One instance of the service over a real socket. */
export async function startInstance (t: Test, config: TestApp['config']): Promise<Instance> {
  const instance = await buildTestApp(t, config)
  const origin = await instance.app.listen({ port: 0, host: '127.0.0.1' })
  const call = async (method: string, path: string): Promise<Answer> => {
    const response = await fetch(`${origin}${path}`, { method })
    return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() }
  }
  return { ...instance, origin, get: (appkey) => call('GET', phonesUrl(appkey)), refresh: (appkey) => call('POST', `${phonesUrl(appkey)}/refresh`) }
}
