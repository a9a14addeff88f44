package wecom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/zhiyin/zhiyin/channels"
)

var _ channels.Fetcher = (*Adapter)(nil)

// Fetch implements channels.Fetcher: it downloads an inbound attachment by
// its media id (GET /cgi-bin/media/get; WeCom keeps media for 3 days). The
// caller closes the reader. Errors are mapped like Send's.
func (a *Adapter) Fetch(ctx context.Context, m channels.Media) (io.ReadCloser, error) {
	if m.Key == "" {
		return nil, channels.Permanent(errors.New("wecom fetch: no media id"))
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := a.tokens.get(ctx, stale)
		if err != nil {
			return nil, fmt.Errorf("wecom fetch: %w", err)
		}
		u := a.apiURL("/cgi-bin/media/get") + "?access_token=" + url.QueryEscape(tok) + "&media_id=" + url.QueryEscape(m.Key)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("wecom fetch: %w", redact(err))
		}
		resp, err := a.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("wecom fetch: %w", redact(err))
		}
		if err := statusError(req, resp); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("wecom fetch: %w", err)
		}
		// Media comes as an attachment (a .txt file as text/plain too);
		// an error as a bare JSON errcode.
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.Header.Get("Content-Disposition") != "" || (ct != "application/json" && ct != "text/plain") {
			return resp.Body, nil
		}
		var res apiResult
		err = json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&res)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("wecom fetch: answer is not JSON: %w", err)
		}
		if (res.ErrCode == codeInvalidToken || res.ErrCode == codeExpiredToken) && attempt == 0 {
			stale = tok
			continue
		}
		if err := apiError(res); err != nil {
			return nil, fmt.Errorf("wecom fetch: %w", err)
		}
		return nil, errors.New("wecom fetch: JSON answer without media")
	}
}
