/** The baseline of the ack benchmark: a bare Fastify hello-world (default JSON parser, no logger) on 127.0.0.1. */
import Fastify from 'fastify';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
const app = Fastify({ logger: false });
app.post('/dialin', async () => ({ hello: 'world' }));
app.get('/', async () => ({ hello: 'world' }));
const address = await app.listen({ host: '127.0.0.1', port });
console.log(JSON.stringify({ msg: 'hello listening', address }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
