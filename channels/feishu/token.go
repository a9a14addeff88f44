package feishu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

const tokenPath = "/open-apis/auth/v3/tenant_access_token/internal"

// Codes that say the access token is invalid or expired: refresh once and
// retry.
const (
	codeTokenInvalid = 99991663
	codeTokenExpired = 99991661
)

// tokenCache holds the tenant_access_token. sem (capacity 1) makes the
// refresh single-flight: one caller fetches, the others wait for it (or for
// their ctx) and then use its token.
type tokenCache struct {
	sem       chan struct{}
	mu        sync.Mutex
	token     string
	refreshAt time.Time // refresh from here on
	expiresAt time.Time // unusable from here on
}

func (c *tokenCache) get(now time.Time) (tok string, fresh, usable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" {
		return "", false, false
	}
	return c.token, now.Before(c.refreshAt), now.Before(c.expiresAt)
}

// token returns a valid tenant_access_token, fetching one when there is
// none or it is about to expire. Safe for concurrent use; blocks during a
// fetch.
func (a *Adapter) token(ctx context.Context) (string, error) {
	if tok, fresh, _ := a.tokens.get(a.now()); fresh {
		return tok, nil
	}
	select {
	case a.tokens.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-a.tokens.sem }()
	old, fresh, usable := a.tokens.get(a.now())
	if fresh {
		return old, nil // another caller refreshed it meanwhile
	}
	tok, expire, err := a.fetchToken(ctx)
	if err != nil {
		if usable {
			// Early refresh failed; the old token still works for a while.
			a.log.Warn("feishu: token refresh failed; using the current token until it expires", logErr, err)
			return old, nil
		}
		return "", err
	}
	now := a.now()
	// Refresh 5 minutes before expiry, or 10% of the lifetime for short
	// ones; Feishu hands out a new token once less than 30 min remain.
	margin := min(5*time.Minute, expire/10)
	a.tokens.mu.Lock()
	a.tokens.token, a.tokens.refreshAt, a.tokens.expiresAt = tok, now.Add(expire-margin), now.Add(expire)
	a.tokens.mu.Unlock()
	return tok, nil
}

// invalidate drops tok when it is still the cached token (so concurrent
// failures with one token cause one refresh).
func (a *Adapter) invalidate(tok string) {
	a.tokens.mu.Lock()
	defer a.tokens.mu.Unlock()
	if a.tokens.token == tok {
		a.tokens.token = ""
	}
}

func (a *Adapter) fetchToken(ctx context.Context) (string, time.Duration, error) {
	req := map[string]string{"app_id": a.cfg.AppID, "app_secret": a.cfg.AppSecret.Value()}
	var resp struct {
		Code   int    `json:"code"`
		Msg    string `json:"msg"`
		Token  string `json:"tenant_access_token"`
		Expire int64  `json:"expire"`
	}
	res, err := a.postJSON(ctx, a.cfg.BaseURL+tokenPath, "", req, &resp)
	if err != nil {
		return "", 0, fmt.Errorf("tenant_access_token: %w", err)
	}
	if d, limited := rateLimited(res, resp.Code); limited {
		return "", 0, channels.RetryAfter(d, fmt.Errorf("tenant_access_token: rate limited (code %d)", resp.Code))
	}
	if res.status >= 500 {
		return "", 0, fmt.Errorf("tenant_access_token: HTTP %d", res.status)
	}
	if resp.Code != 0 || resp.Token == "" {
		return "", 0, channels.Permanent(fmt.Errorf("tenant_access_token: code %d %s (HTTP %d): check channels.feishu.app_id and app_secret (developer console > Credentials & Basic Info)", resp.Code, resp.Msg, res.status))
	}
	expire := time.Duration(resp.Expire) * time.Second
	if expire <= 0 {
		expire = 2 * time.Hour // the documented lifetime
	}
	return resp.Token, expire, nil
}
