package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/browsertest"
)

// TestWebChatInBrowser: the real daemon with the built-in defaults (the
// web chat is on by default) serves /chat; a visitor in headless Chromium
// asks about a parcel and the demo domain's answer shows in the page.
func TestWebChatInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := browsertest.Start(t, ctx)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\n", filepath.Join(dir, "var"), addr))
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	if ready := waitReady(t, d.url); !strings.Contains(ready, "channel:webchat") {
		t.Errorf("/readyz lacks the web chat channel: %s", ready)
	}

	page := b.NewPage(ctx)
	page.Navigate(ctx, d.url+"/chat")
	page.WaitTrue(ctx, `!!window.ZhiyinChat && window.ZhiyinChat.connected()`)
	const question = "我的快递SF1234567890到哪了"
	page.Eval(ctx, `(() => {
		const i = document.querySelector('.zy-input');
		i.value = `+browsertest.JSString(question)+`;
		document.querySelector('.zy-send').click();
		return true;
	})()`)
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-me .zy-bubble')).some(e => e.textContent === `+browsertest.JSString(question)+`)`)
	page.WaitTrue(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).some(e => e.textContent.includes('杭州'))`)
	t.Logf("answer: %s", page.Eval(ctx, `Array.from(document.querySelectorAll('.zy-bot .zy-bubble')).map(e => e.textContent).join(' | ')`))
	if errs := b.Errors(); len(errs) > 0 {
		t.Fatalf("browser errors:\n%s", strings.Join(errs, "\n"))
	}
}
