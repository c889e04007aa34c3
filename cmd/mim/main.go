// Command mim is the Moodle integration warehouse: it extracts SITS, CMIS and
// Moodle into PostgreSQL, transforms them with SQL, and feeds Moodle back
// behind guards. main only wires the process to internal/app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mimwarehouse/mim/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
