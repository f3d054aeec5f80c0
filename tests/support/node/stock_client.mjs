// A stock Yjs client: yjs + y-websocket's WebsocketProvider, nothing coderoom-specific but
// the Authorization header Node lets us add (a browser would use a ticket instead).
//
//   node stock_client.mjs <serverUrl> <roomname> <access token>
//
// Waits for the first sync, prints {"synced": <main.py>}, inserts "from node\n" at the top
// of main.py and sets its awareness, then waits until main.py contains "from python" and
// prints {"final": <main.py>}. Lines on stdout are JSON, one per event.
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, token] = process.argv.slice(2)

class AuthorizedWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { headers: { Authorization: `Bearer ${token}` } })
  }
}

const doc = new Y.Doc()
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: AuthorizedWebSocket,
  disableBc: true
})
const files = doc.getMap('files')
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')
const main = () => files.get('main.py')?.toString() ?? null

const timer = setTimeout(() => { say({ error: 'timeout', text: main() }); process.exit(2) }, 30000)

provider.once('sync', () => {
  say({ synced: main() })
  provider.awareness.setLocalStateField('user', { name: 'node' })
  files.get('main.py').insert(0, 'from node\n')
  const check = () => {
    if (main().includes('from python')) {
      say({ final: main() })
      clearTimeout(timer)
      provider.destroy()
      process.exit(0)
    }
  }
  files.get('main.py').observe(check)
  check()
})
