package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/server"
	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/token"
)

type tokenOptions struct {
	config string
	role   string
	name   string
}

func newTokenCmd(g *globalOptions) *cobra.Command {
	o := &tokenOptions{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke vguard serve's API tokens",
		Long: `Manage the bearer tokens of vguard serve, directly in its store (the server
may be running). A token is printed once, when created; the store keeps only
its hash. Roles: viewer reads, operator also judges changes and uploads scan
reports, admin also replaces the estate and policy and manages tokens.`,
	}
	cmd.PersistentFlags().StringVar(&o.config, "config", "", "the server's config `FILE` (required)")
	create := &cobra.Command{
		Use:     "create --role viewer|operator|admin --name NAME",
		Short:   "Create a token and print it (once)",
		Example: `  vguard token create --config serve.yaml --role operator --name ci-pipeline`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenCreate(cmd.Context(), g, o, cmd.CommandPath())
		},
	}
	create.Flags().StringVar(&o.role, "role", "", "viewer, operator or admin (required)")
	create.Flags().StringVar(&o.name, "name", "", "who or what holds the token (required)")
	_ = create.RegisterFlagCompletionFunc("role", fixedCompletion("viewer", "operator", "admin"))
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenList(cmd.Context(), g, o, cmd.CommandPath())
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (a running server stops accepting it within seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenRevoke(cmd.Context(), g, o, args[0], cmd.CommandPath())
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// withStore opens the store of --config for fn, bringing its schema up to
// date.
func withStore(ctx context.Context, cmdPath, config string, fn func(store.Store) error) error {
	cfg, err := loadServerConfig(cmdPath, config)
	if err != nil {
		return err
	}
	st, err := openServerStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

func runTokenCreate(ctx context.Context, g *globalOptions, o *tokenOptions, cmdPath string) error {
	if _, err := token.ParseRole(o.role); err != nil {
		return usagef(cmdPath, "--role: %v", err)
	}
	if o.name == "" {
		return usagef(cmdPath, "--name is required")
	}
	if err := token.CheckName(o.name); err != nil {
		return usagef(cmdPath, "--name: %v", err)
	}
	return withStore(ctx, cmdPath, o.config, func(st store.Store) error {
		t, secret, err := server.CreateToken(ctx, st, o.name, o.role, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "vguard: token %s (%s, %s) created; it is shown only now:\n", t.ID, t.Name, t.Role)
		fmt.Fprintln(g.stdout, secret)
		return nil
	})
}

func runTokenList(ctx context.Context, g *globalOptions, o *tokenOptions, cmdPath string) error {
	return withStore(ctx, cmdPath, o.config, func(st store.Store) error {
		ts, err := st.Tokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
		for _, t := range ts {
			revoked := "-"
			if !t.Revoked.IsZero() {
				revoked = t.Revoked.Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.Format("2006-01-02 15:04:05Z"), revoked)
		}
		return tw.Flush()
	})
}

func runTokenRevoke(ctx context.Context, g *globalOptions, o *tokenOptions, id, cmdPath string) error {
	return withStore(ctx, cmdPath, o.config, func(st store.Store) error {
		err := server.RevokeToken(ctx, st, id, "cli")
		if errors.Is(err, store.ErrNotFound) {
			return usagef(cmdPath, "no valid token %q", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "vguard: token %s revoked\n", id)
		return nil
	})
}
