// Asks the ragmesh gateway a question through the TypeScript client generated from protos/
// (`make clients`; gRPC over HTTP/2 with Connect's Node transport), streaming the answer and then
// its citations:
//   RAGMESH_ADDR=127.0.0.1:50051 RAGMESH_API_KEY=rmk_... node ask.js "How do we rotate the on-call schedule?"
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { GatewayService } from "./gen/rag/v1/gateway_pb.js";
import { AnswerStatus } from "./gen/rag/v1/types_pb.js";

const transport = createGrpcTransport({ baseUrl: `http://${process.env.RAGMESH_ADDR ?? "127.0.0.1:50051"}` });
const gateway = createClient(GatewayService, transport);
const headers = { "x-api-key": process.env.RAGMESH_API_KEY ?? "" };

const question = process.argv.slice(2).join(" ");
for await (const message of gateway.ask({ question }, { headers, timeoutMs: 30_000 })) {
  if (message.event.case === "delta") {
    process.stdout.write(message.event.value);
  } else if (message.event.case === "final") {
    const final = message.event.value;
    process.stdout.write(`\n${AnswerStatus[final.status]}\n`);
    for (const citation of final.citations) {
      process.stdout.write(`  [${citation.sourceNumber}] ${citation.docId}\n`);
    }
  }
}
