// Creates a stream with the official NATS Go client, as a Go application does:
//
//	create_stream URL USER PASSWORD STREAM CLIENT_NAME
//
// Exits 0 once the server has made the stream; on an error exits 1 saying why. Built offline
// against Debian's golang-github-nats-io-go-nats-dev (GOPATH mode): the Go module proxy may be
// out of reach where the tests run.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	if err := createStream(os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
		fmt.Fprintf(os.Stderr, "create_stream.go: %v\n", err)
		os.Exit(1)
	}
}

func createStream(url, user, password, stream, name string) error {
	// No reconnecting: a server that goes away fails the run instead of being waited for.
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.Name(name),
		nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(5 * time.Second))
	if err != nil {
		return err
	}
	_, err = js.AddStream(&nats.StreamConfig{Name: stream, Subjects: []string{stream}})
	return err
}
