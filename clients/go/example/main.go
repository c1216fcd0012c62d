// Command example asks the ragmesh gateway a question through the Go client generated from
// protos/ (`make clients`), streaming the answer and then its citations:
//
//	RAGMESH_ADDR=127.0.0.1:50051 RAGMESH_API_KEY=rmk_... ./ask "How do we rotate the on-call schedule?"
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	ragv1 "github.com/ragmesh/ragmesh/clients/go/gen/rag/v1"
)

func main() {
	addr := os.Getenv("RAGMESH_ADDR")
	if addr == "" {
		addr = "127.0.0.1:50051"
	}
	// Plaintext, as to `ragmesh up` on this machine; use grpc.WithTransportCredentials for TLS.
	conn, err := grpc.Dial(addr, grpc.WithInsecure())
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	gateway := ragv1.NewGatewayServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", os.Getenv("RAGMESH_API_KEY"))
	stream, err := gateway.Ask(ctx, &ragv1.AskRequest{Question: strings.Join(os.Args[1:], " ")})
	if err != nil {
		fail(err)
	}
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			fail(err)
		}
		switch event := message.Event.(type) {
		case *ragv1.AskResponse_Delta:
			fmt.Print(event.Delta)
		case *ragv1.AskResponse_Final:
			fmt.Printf("\n%s\n", event.Final.Status)
			for _, citation := range event.Final.Citations {
				fmt.Printf("  [%d] %s\n", citation.SourceNumber, citation.DocId)
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
