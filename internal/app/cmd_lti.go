package app

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/mimwarehouse/mim/internal/lti"
)

var ltiCommand = Command{
	Name:    "lti",
	Group:   "Operations",
	Summary: "the LTI tool course staff map their courses with: key, registrations, staff changes",
	Usage: `mim lti keygen --out FILE
       mim lti platforms [--instance SITE]
       mim lti register --instance SITE --client-id ID --deployment-id ID[,ID...]
       mim lti revoke --id N
       mim lti changes [--instance SITE] [--course IDNUMBER] [--limit N]`,
	Help:     helpText("lti"),
	NoConfig: true,
	Setup: func(fs *flag.FlagSet) Runner {
		out := fs.String("out", "", "keygen: the `FILE` to write the key to")
		instance := fs.String("instance", "", "the Moodle `SITE` (moodle[].name)")
		clientID := fs.String("client-id", "", "register: the client `ID` Moodle gave the tool")
		deployments := fs.String("deployment-id", "", "register: the deployment `ID`s, comma-separated")
		id := fs.Int64("id", 0, "revoke: the registration `N` (mim lti platforms)")
		course := fs.String("course", "", "changes: only this course `IDNUMBER`")
		limit := fs.Int("limit", 50, "changes: at most `N`")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 1 {
				return Usagef("say keygen, platforms, register, revoke or changes")
			}
			switch args[0] {
			case "keygen":
				if *out == "" {
					return Usagef("keygen needs --out FILE")
				}
				if err := lti.WriteKey(*out); err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "wrote the LTI tool's key to %s (mode 0600); set lti.key_file to it\n", *out)
				return nil
			case "platforms":
				pool, err := e.Warehouse(ctx)
				if err != nil {
					return err
				}
				ps, err := lti.Platforms(ctx, pool, *instance)
				if err != nil {
					return err
				}
				return lti.WritePlatforms(e.Stdout, ps)
			case "register":
				return ltiRegister(ctx, e, *instance, *clientID, *deployments)
			case "revoke":
				if *id <= 0 {
					return Usagef("revoke needs --id N (mim lti platforms lists them)")
				}
				pool, err := e.Warehouse(ctx)
				if err != nil {
					return err
				}
				if err := lti.Revoke(ctx, pool, *id); err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "revoked LTI registration %d: its launches are refused from now on\n", *id)
				return nil
			case "changes":
				if *limit < 1 {
					return Usagef("--limit must be at least 1")
				}
				pool, err := e.Warehouse(ctx)
				if err != nil {
					return err
				}
				cs, err := lti.StaffChanges(ctx, pool, *instance, *course, *limit)
				if err != nil {
					return err
				}
				return lti.WriteStaffChanges(e.Stdout, cs)
			}
			return Usagef("unknown action %q (use keygen, platforms, register, revoke or changes)", args[0])
		}
	},
}

func ltiRegister(ctx context.Context, e *Env, instance, clientID, deployments string) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if instance == "" || clientID == "" || deployments == "" {
		return Usagef("register needs --instance SITE, --client-id ID and --deployment-id ID")
	}
	if !slices.Contains(cfg.LTI.Sites, instance) {
		return Usagef("site %q is not in lti.sites (%s)", instance, strings.Join(cfg.LTI.Sites, ", "))
	}
	var issuer string
	if site, ok := cfg.Site(instance); ok {
		issuer = site.Issuer()
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	p, err := lti.Register(ctx, pool, lti.ByHand(instance, issuer, clientID, deployments, Who()))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "registered %s (issuer %s) as LTI registration %d: client %s, deployments %s\n", p.Instance, p.Issuer, p.ID,
		p.ClientID, strings.Join(p.DeploymentIDs, ", "))
	return nil
}
