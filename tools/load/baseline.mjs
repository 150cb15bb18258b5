// The baseline the load harness compares against: Node's bare http module
// doing what the public CDS Hooks sample services do per call (parse the
// JSON body, answer a fixed card), without their framework overhead.
import http from 'node:http';

const port = Number(process.env.PORT || 18090);
const answer = JSON.stringify({
  cards: [{
    uuid: '7c8d5b9e-0000-4000-8000-000000000000',
    summary: 'A fixed card',
    indicator: 'info',
    source: { label: 'baseline' },
  }],
});

http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(answer);
    } catch {
      response.writeHead(400);
      response.end();
    }
  });
}).listen(port, '127.0.0.1', () => console.log(`baseline listening on ${port}`));
