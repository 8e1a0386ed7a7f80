// A sample upstream API: answers every request with what it received, so you can see the
// X-Stepup-* headers the gateway added after stepup-pdp allowed the request.
import { createServer } from 'node:http'
import process from 'node:process'

createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const stepup = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name.startsWith('x-stepup-')))
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, stepup }, null, 2) + '\n')
  })
}).listen(Number(process.env.PORT ?? 8000), '0.0.0.0')
