package lti

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Platform is one registration of MIM with a Moodle site
// (ctl.lti_platform): the site it acts on, and what the site told MIM.
type Platform struct {
	ID            int64
	Instance      string // the Moodle site (moodle[].name)
	Issuer        string
	ClientID      string
	DeploymentIDs []string
	AuthURL       string
	JWKSURL       string
	TokenURL      string
	RegisteredAt  time.Time
	RegisteredBy  string
	Active        bool
	Detail        map[string]any
}

const platformColumns = `platform_id, instance, issuer, client_id, deployment_ids, auth_url, jwks_url, token_url,
	registered_at, registered_by, active, detail`

func scanPlatform(r pgx.CollectableRow) (Platform, error) {
	var p Platform
	var detail []byte
	err := r.Scan(&p.ID, &p.Instance, &p.Issuer, &p.ClientID, &p.DeploymentIDs, &p.AuthURL, &p.JWKSURL, &p.TokenURL,
		&p.RegisteredAt, &p.RegisteredBy, &p.Active, &detail)
	if err == nil {
		err = json.Unmarshal(detail, &p.Detail)
	}
	return p, err
}

// Platforms lists the registrations, of every site or of one.
func Platforms(ctx context.Context, q warehouse.Querier, instance string) ([]Platform, error) {
	rows, err := q.Query(ctx, `SELECT `+platformColumns+` FROM ctl.lti_platform WHERE $1 = '' OR instance = $1
		ORDER BY instance, platform_id`, instance)
	if err != nil {
		return nil, fmt.Errorf("reading the LTI registrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanPlatform)
	if err != nil {
		return nil, fmt.Errorf("reading the LTI registrations: %w", err)
	}
	return out, nil
}

// platformsOf returns the active registrations of issuer.
func platformsOf(ctx context.Context, q warehouse.Querier, issuer string) ([]Platform, error) {
	rows, err := q.Query(ctx, `SELECT `+platformColumns+` FROM ctl.lti_platform WHERE issuer = $1 AND active ORDER BY platform_id`, issuer)
	if err != nil {
		return nil, fmt.Errorf("reading the LTI registrations of %s: %w", issuer, err)
	}
	out, err := pgx.CollectRows(rows, scanPlatform)
	if err != nil {
		return nil, fmt.Errorf("reading the LTI registrations of %s: %w", issuer, err)
	}
	return out, nil
}

func platformByID(ctx context.Context, q warehouse.Querier, id int64) (Platform, error) {
	rows, err := q.Query(ctx, `SELECT `+platformColumns+` FROM ctl.lti_platform WHERE platform_id = $1`, id)
	if err != nil {
		return Platform{}, fmt.Errorf("reading LTI registration %d: %w", id, err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanPlatform)
	if err != nil {
		return Platform{}, fmt.Errorf("reading LTI registration %d: %w", id, err)
	}
	return p, nil
}

// Register records a registration: a new one, or new deployments and
// endpoints of the same issuer and client id (registering twice is
// harmless). It returns the registration as stored.
func Register(ctx context.Context, q warehouse.Querier, p Platform) (Platform, error) {
	if p.Instance == "" || p.Issuer == "" || p.ClientID == "" || p.AuthURL == "" || p.JWKSURL == "" || p.RegisteredBy == "" {
		return Platform{}, errors.New("registering an LTI platform: site, issuer, client id, auth and JWKS URLs and who are required")
	}
	if p.DeploymentIDs == nil {
		p.DeploymentIDs = []string{}
	}
	detail, err := json.Marshal(p.Detail)
	if err != nil || p.Detail == nil {
		detail = []byte("{}")
	}
	rows, err := q.Query(ctx, `INSERT INTO ctl.lti_platform (instance, issuer, client_id, deployment_ids, auth_url, jwks_url, token_url,
			registered_by, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (issuer, client_id) DO UPDATE SET instance = EXCLUDED.instance,
			deployment_ids = ARRAY(SELECT DISTINCT d FROM unnest(ctl.lti_platform.deployment_ids || EXCLUDED.deployment_ids) d ORDER BY d),
			auth_url = EXCLUDED.auth_url, jwks_url = EXCLUDED.jwks_url, token_url = EXCLUDED.token_url,
			registered_at = now(), registered_by = EXCLUDED.registered_by, active = true, detail = EXCLUDED.detail
		RETURNING `+platformColumns,
		p.Instance, p.Issuer, p.ClientID, p.DeploymentIDs, p.AuthURL, p.JWKSURL, p.TokenURL, p.RegisteredBy, detail)
	if err != nil {
		return Platform{}, fmt.Errorf("registering the LTI platform %s (client %s): %w", p.Issuer, p.ClientID, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanPlatform)
	if err != nil {
		return Platform{}, fmt.Errorf("registering the LTI platform %s (client %s): %w", p.Issuer, p.ClientID, err)
	}
	return out, nil
}

// Revoke deactivates registration id: its launches are refused from now on
// and its sessions end.
func Revoke(ctx context.Context, q warehouse.Querier, id int64) error {
	tag, err := q.Exec(ctx, `UPDATE ctl.lti_platform SET active = false WHERE platform_id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoking LTI registration %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("there is no LTI registration %d (mim lti platforms lists them)", id)
	}
	if _, err := q.Exec(ctx, `DELETE FROM ctl.lti_session WHERE platform_id = $1`, id); err != nil {
		return fmt.Errorf("ending the sessions of LTI registration %d: %w", id, err)
	}
	return nil
}
