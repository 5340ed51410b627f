// check.mjs parses ../asyncapi.json with the official AsyncAPI parser (with
// the OpenAPI 3.0 schema parser registered, the format of every payload) and
// exits non-zero when it reports a diagnostic of severity error. Warnings and
// hints are printed.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import { OpenAPISchemaParser } from '@asyncapi/openapi-schema-parser';

const path = fileURLToPath(new URL('../asyncapi.json', import.meta.url));
const parser = new Parser();
parser.registerSchemaParser(OpenAPISchemaParser());

const { document, diagnostics } = await parser.parse(await readFile(path, 'utf8'), { source: path });
const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning', [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === DiagnosticSeverity.Error) errors++;
  console.log(`${names[d.severity] ?? d.severity}: ${d.code}: ${d.message} at /${d.path.join('/')}`);
}
if (errors > 0 || !document) {
  console.error(`asyncapi.json: ${errors} error(s)`);
  process.exit(1);
}
const messages = document.allMessages().length;
const operations = document.operations().length;
console.log(`asyncapi.json: AsyncAPI ${document.version()}, ${operations} operations, ${messages} messages, no errors`);
