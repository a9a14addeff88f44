package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/zhiyin/zhiyin/channels"
)

// downloadPath turns a message file's downloadCode into a temporary URL.
const downloadPath = "/v1.0/robot/messageFiles/download"

// Fetch downloads a media attachment of an inbound message (m.Key is its
// downloadCode): it asks the robot OpenAPI for a temporary URL and GETs it.
// The caller closes the reader and bounds what it reads. Needs client_id
// and client_secret. Safe for concurrent use.
func (a *Adapter) Fetch(ctx context.Context, m channels.Media) (io.ReadCloser, error) {
	if m.Key == "" {
		return nil, errors.New("dingtalk: fetch: no downloadCode")
	}
	if !a.openAPIReady() {
		return nil, fmt.Errorf("dingtalk: fetch: client_id and client_secret are needed to download files")
	}
	robot := a.cfg.RobotCode
	if robot == "" {
		robot = a.cfg.ClientID
	}
	res, err := a.callOpenAPI(ctx, "fetch", downloadPath, map[string]string{"downloadCode": m.Key, "robotCode": robot})
	if err != nil {
		return nil, err
	}
	var r struct {
		DownloadURL string `json:"downloadUrl"`
	}
	if err := json.Unmarshal(res.body, &r); err != nil || r.DownloadURL == "" {
		return nil, errors.New("dingtalk: fetch: no downloadUrl in the answer")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.DownloadURL, nil)
	if err != nil {
		return nil, fmt.Errorf("dingtalk: fetch: bad downloadUrl %s", redactURL(r.DownloadURL))
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dingtalk: fetch: GET %s: %w", redactURL(r.DownloadURL), unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("dingtalk: fetch: GET %s: HTTP %d", redactURL(r.DownloadURL), resp.StatusCode)
	}
	return resp.Body, nil
}
