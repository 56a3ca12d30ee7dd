package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/server"
	"github.com/vguard-dev/vguard/internal/store"
)

type serveOptions struct {
	config      string
	printConfig bool
}

func newServeCmd(g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the guard as a service: an HTTP API, a durable store and an audit trail",
		Long: `Serve the vguard HTTP API (docs/serve.md): upload the estate and policy, list
findings with their history, judge changes as 'vguard plan' does, blast radius,
rollout plans, scan report uploads, the audit trail; /healthz and /metrics.

The config file is validated before anything starts; --print-config shows it
as understood, secrets redacted, and exits. Every endpoint but /healthz needs
a bearer token: create the first with
'vguard token create --config FILE --role admin --name NAME'.`,
		Example: `  vguard token create --config serve.yaml --role admin --name alice
  vguard serve --config serve.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, o, cmd.CommandPath())
		},
	}
	cmd.Flags().StringVar(&o.config, "config", "", "the server's config `FILE` (required)")
	cmd.Flags().BoolVar(&o.printConfig, "print-config", false, "print the config as understood (secrets redacted) and exit")
	return cmd
}

// loadServerConfig reads --config for serve, token and audit.
func loadServerConfig(cmdPath, path string) (*server.Config, error) {
	if path == "" {
		return nil, usagef(cmdPath, "--config is required")
	}
	cfg, err := server.LoadConfig(path)
	if err != nil {
		return nil, &inputError{errs: []error{err}}
	}
	return cfg, nil
}

func openServerStore(ctx context.Context, cfg *server.Config) (store.Store, error) {
	st, err := server.OpenStore(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	return st, nil
}

// isLoopback tells whether host (from listen) is reachable from this
// machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, g *globalOptions, o *serveOptions, cmdPath string) error {
	cfg, err := loadServerConfig(cmdPath, o.config)
	if err != nil {
		return err
	}
	if o.printConfig {
		fmt.Fprint(g.stdout, cfg.Redacted())
		return nil
	}
	if err := cfg.CheckTLS(); err != nil {
		return &inputError{errs: []error{fmt.Errorf("%s: %w", o.config, err)}}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(g.stderr, nil))
	st, err := openServerStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(ctx, cfg, server.Options{Store: st, Logger: logger, Connectors: server.BuiltinConnectors()})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // large estates upload slowly
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	} else if host, _, _ := net.SplitHostPort(cfg.Listen); !isLoopback(host) {
		fmt.Fprintf(g.stderr, "vguard serve: warning: listening on %s without TLS: bearer tokens cross the network in clear\n", cfg.Listen)
	}
	fmt.Fprintf(g.stderr, "vguard serve: listening on %s://%s\n", scheme, ln.Addr())
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS.Cert != "" {
			errc <- hs.ServeTLS(ln, cfg.TLS.Cert, cfg.TLS.Key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(g.stderr, "vguard serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
