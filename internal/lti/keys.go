package lti

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeyBits is the size of the RSA key GenerateKey makes.
const KeyBits = 3072

// GenerateKey makes the tool's RSA private key.
func GenerateKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, KeyBits) }

// EncodeKey is key in PEM (PKCS #8), as LoadKey reads it.
func EncodeKey(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteKey writes a new key to path (mode 0600), whole or not at all, and
// never over an existing file: replacing the key breaks every registration.
func WriteKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: the tool's key is replaced only deliberately (remove the file first; every Moodle site must then register the tool again)", path)
	}
	key, err := GenerateKey()
	if err != nil {
		return fmt.Errorf("generating the tool's key: %w", err)
	}
	data, err := EncodeKey(key)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lti-key-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// LoadKey reads the tool's RSA private key from a PEM file (PKCS #8 or
// PKCS #1).
func LoadKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the LTI tool's key (lti.key_file): %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("lti.key_file %s holds no PEM block (mim lti keygen --out FILE writes one)", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("lti.key_file %s holds a %q, not an RSA private key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("lti.key_file %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("lti.key_file %s: the key is not RSA (LTI platforms expect RS256)", path)
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("lti.key_file %s: an RSA key of %d bits is too short (2048 at least)", path, rk.N.BitLen())
	}
	return rk, nil
}

// publicJWK is the public half of key with its kid (the RFC 7638
// thumbprint, so the same key always has the same id).
func publicJWK(key *rsa.PrivateKey) (jose.JSONWebKey, error) {
	jwk := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jwk, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

// keySets caches the platforms' public keys by JWKS URL, for maxKeyAge. A
// token signed with a key the cache does not know makes it fetch the set
// again (a platform rotates its key), at most once per minRefresh per URL,
// so a stream of forged kids cannot make MIM hammer the platform.
type keySets struct {
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time

	mu   sync.Mutex
	sets map[string]*keySet
}

type keySet struct {
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time // the last fetch
	missed  time.Time // the last fetch an unknown kid caused
}

// maxKeyAge is how long a fetched key set is trusted before it is fetched
// again anyway (a platform may withdraw a key).
const maxKeyAge = time.Hour

// maxJWKS bounds a key set's size.
const maxJWKS = 1 << 20

// key returns the public key kid of the set at url.
func (c *keySets) key(ctx context.Context, url, kid string) (*jose.JSONWebKey, error) {
	if kid == "" {
		return nil, errors.New("the token's header names no key (kid)")
	}
	c.mu.Lock()
	s := c.sets[url]
	if s == nil {
		s = &keySet{}
		c.sets[url] = s
	}
	c.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.now()
	stale := s.fetched.IsZero() || now.Sub(s.fetched) > maxKeyAge
	if !stale {
		if k := find(s.keys, kid); k != nil {
			return k, nil
		}
		if now.Sub(s.missed) < c.minRefresh {
			return nil, fmt.Errorf("the platform's key set (%s) has no key %q (looked again %s ago)", url, kid, now.Sub(s.missed).Round(time.Second))
		}
		s.missed = now
	}
	keys, err := c.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	s.keys, s.fetched = keys, now
	if k := find(s.keys, kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("the platform's key set (%s) has no key %q", url, kid)
}

func find(set jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	for _, k := range set.Key(kid) {
		if k.IsPublic() && k.Valid() && (k.Use == "" || k.Use == "sig") {
			return &k
		}
	}
	return nil
}

func (c *keySets) fetch(ctx context.Context, url string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return set, fmt.Errorf("fetching the platform's keys from %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return set, fmt.Errorf("fetching the platform's keys from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("fetching the platform's keys from %s: HTTP %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return set, fmt.Errorf("fetching the platform's keys from %s: %w", url, err)
	}
	if len(body) > maxJWKS {
		return set, fmt.Errorf("fetching the platform's keys from %s: more than %d bytes", url, maxJWKS)
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, fmt.Errorf("the platform's keys at %s are not a JSON Web Key Set: %w", url, err)
	}
	return set, nil
}

// CheckKeys fetches a platform's key set and says whether it holds a
// signing key (mim check).
func CheckKeys(ctx context.Context, url string) error {
	c := &keySets{client: &http.Client{Timeout: 15 * time.Second}, now: time.Now}
	set, err := c.fetch(ctx, url)
	if err != nil {
		return err
	}
	for _, k := range set.Keys {
		if k.IsPublic() && k.Valid() && (k.Use == "" || k.Use == "sig") {
			return nil
		}
	}
	return fmt.Errorf("the platform's key set at %s holds no public signing key", url)
}
