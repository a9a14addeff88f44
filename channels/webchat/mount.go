package webchat

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"sync"

	fiberws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

//go:embed assets/widget.js assets/widget.css assets/chat.html
var files embed.FS

// titlePlaceholder in widget.js is replaced by the configured title (a
// JSON string) when the adapter is built.
const titlePlaceholder = `"__ZHIYIN_TITLE__"`

// asset is one static file, ready to serve.
type asset struct {
	body  []byte
	etag  string
	ctype string
	cache string
}

func newAsset(body []byte, ctype, cache string) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype, cache: cache}
}

type assets struct {
	js, css *asset
	page    *template.Template

	mu    sync.Mutex
	pages map[string]*asset // by mount prefix
}

// Cache policies: the widget files are embedded in customers' sites, so
// they are cached briefly and revalidated by ETag (a new version is picked
// up within minutes of an upgrade); the page is always revalidated.
const (
	cacheWidget = "public, max-age=600"
	cachePage   = "no-cache"
)

func buildAssets(title string) (*assets, error) {
	js, err := files.ReadFile("assets/widget.js")
	if err != nil {
		return nil, err
	}
	css, err := files.ReadFile("assets/widget.css")
	if err != nil {
		return nil, err
	}
	page, err := files.ReadFile("assets/chat.html")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(js, []byte(titlePlaceholder)) {
		return nil, fmt.Errorf("widget.js has no title placeholder")
	}
	t, err := json.Marshal(title) // escapes <, >, & and U+2028/9: safe in a script
	if err != nil {
		return nil, err
	}
	js = bytes.Replace(js, []byte(titlePlaceholder), t, 1)
	tpl, err := template.New("chat.html").Parse(string(page))
	if err != nil {
		return nil, fmt.Errorf("chat.html: %w", err)
	}
	return &assets{
		js:    newAsset(js, "application/javascript; charset=utf-8", cacheWidget),
		css:   newAsset(css, "text/css; charset=utf-8", cacheWidget),
		page:  tpl,
		pages: map[string]*asset{},
	}, nil
}

// pageFor renders the /chat page for a mount prefix ("" or "/support").
func (as *assets) pageFor(prefix, title string) (*asset, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if p := as.pages[prefix]; p != nil {
		return p, nil
	}
	var b bytes.Buffer
	if err := as.page.Execute(&b, struct{ Title, Base string }{title, prefix + "/chat/"}); err != nil {
		return nil, err
	}
	p := newAsset(b.Bytes(), "text/html; charset=utf-8", cachePage)
	as.pages[prefix] = p
	return p, nil
}

// Mount registers the web chat on the daemon's fiber app (or a group of
// it): GET /chat (the chat page), GET /chat/widget.js and
// GET /chat/widget.css (the embeddable widget) and GET /chat/ws (the
// websocket). The routes need no API key: visitors are anonymous; the
// websocket checks the Origin against allowed_origins. Call it once,
// before serving.
func (a *Adapter) Mount(r fiber.Router) {
	prefix := ""
	if g, ok := r.(*fiber.Group); ok {
		prefix = strings.TrimSuffix(g.Prefix, "/")
	}
	page, err := a.assets.pageFor(prefix, a.cfg.Title)
	if err != nil { // the embedded template is tested; never at run time
		panic(fmt.Sprintf("webchat: render chat page: %v", err))
	}
	r.Get("/chat", serveAsset(page, pageHeaders))
	r.Get("/chat/widget.js", serveAsset(a.assets.js, widgetHeaders))
	r.Get("/chat/widget.css", serveAsset(a.assets.css, widgetHeaders))
	r.Get("/chat/ws", a.upgradeGate, fiberws.New(a.serveConn, fiberws.Config{
		HandshakeTimeout: writeWait,
		Origins:          []string{"*"}, // upgradeGate checks them
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
		RecoverHandler: func(*fiberws.Conn) {
			if v := recover(); v != nil {
				a.log.Error("webchat: socket handler panicked", logKeyError, fmt.Sprint(v))
			}
		},
	}))
}

// pageHeaders keep the page to its own scripts and styles.
var pageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'",
	"Referrer-Policy":         "no-referrer",
}

// widgetHeaders let any site load the widget.
var widgetHeaders = map[string]string{
	"Cross-Origin-Resource-Policy": "cross-origin",
	"Access-Control-Allow-Origin":  "*",
}

func serveAsset(as *asset, extra map[string]string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderETag, as.etag)
		c.Set(fiber.HeaderCacheControl, as.cache)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		for k, v := range extra {
			c.Set(k, v)
		}
		if etagMatch(c.Get(fiber.HeaderIfNoneMatch), as.etag) {
			return c.SendStatus(fiber.StatusNotModified)
		}
		c.Set(fiber.HeaderContentType, as.ctype)
		return c.Send(as.body)
	}
}

// etagMatch reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
