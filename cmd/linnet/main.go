// Command linnet is the Linnet service mesh: router, namerd, dtab CLI, demo.
package main

import (
	"os"

	"github.com/linnet-mesh/linnet/internal/cli"
	_ "github.com/linnet-mesh/linnet/internal/plugins"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
