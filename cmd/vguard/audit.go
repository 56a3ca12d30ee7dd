package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/audit"
	"github.com/vguard-dev/vguard/internal/server"
	"github.com/vguard-dev/vguard/internal/store"
)

type auditOptions struct {
	config string
	output string
}

func newAuditCmd(g *globalOptions) *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify or export vguard serve's audit trail",
		Long: `The audit trail of vguard serve is a hash chain: each record holds the hash of
the one before it (docs/serve.md gives the canonical encoding). 'verify'
recomputes the chain and names the first broken record (exit 1); 'export'
writes every record as a JSON line.`,
	}
	cmd.PersistentFlags().StringVar(&o.config, "config", "", "the server's config `FILE` (required)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the chain; exit 1 naming the first broken record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditVerify(cmd.Context(), g, o, cmd.CommandPath())
		},
	}
	export := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Write every record as a JSON line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditExport(cmd.Context(), g, o, cmd.CommandPath())
		},
	}
	export.Flags().StringVarP(&o.output, "output", "o", "", "write to `FILE` instead of stdout")
	cmd.AddCommand(verify, export)
	return cmd
}

// withStoreReadOnly opens the store of --config for fn without writing to
// it: verifying the trail must not change the database it verifies.
func withStoreReadOnly(ctx context.Context, cmdPath, config string, fn func(store.Store) error) error {
	cfg, err := loadServerConfig(cmdPath, config)
	if err != nil {
		return err
	}
	st, err := server.OpenStoreReadOnly(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()
	return fn(st)
}

func runAuditVerify(ctx context.Context, g *globalOptions, o *auditOptions, cmdPath string) error {
	return withStoreReadOnly(ctx, cmdPath, o.config, func(st store.Store) error {
		n, err := audit.Verify(ctx, st)
		var p *audit.Problem
		if errors.As(err, &p) {
			return &verdictError{msg: fmt.Sprintf("vguard: the audit trail is broken at record %d: %s (%d records before it verify)", p.Seq, p.Reason, n)}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "audit trail verified: %d records\n", n)
		return nil
	})
}

func runAuditExport(ctx context.Context, g *globalOptions, o *auditOptions, cmdPath string) error {
	return withStoreReadOnly(ctx, cmdPath, o.config, func(st store.Store) error {
		return g.writeOutput(o.output, func(w io.Writer) error {
			bw := bufio.NewWriter(w)
			enc := json.NewEncoder(bw)
			enc.SetEscapeHTML(false)
			var after int64
			for {
				recs, err := st.AuditRecords(ctx, after, 1000)
				if err != nil {
					return err
				}
				if len(recs) == 0 {
					return bw.Flush()
				}
				for i := range recs {
					if err := enc.Encode(&recs[i]); err != nil {
						return err
					}
				}
				after = recs[len(recs)-1].Seq
			}
		})
	})
}
