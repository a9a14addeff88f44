package orders

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "demo"

// Migrations returns the demo tables and rows (NNNN_name.sql at the root of
// the returned FS), for store.Open.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Name is the skill's name in the domain.
const Name = "order_lookup"

// Intents the skill answers specially; any other intent gets an order
// summary when the message or the slots name an order.
const (
	IntentTrackParcel  = "track_parcel"
	IntentRefundStatus = "refund_status"
	IntentCancelOrder  = "cancel_order"
)

// Forms the skill confirms on submit.
const (
	FormReturnGoods   = "return_goods"
	FormChangeAddress = "change_address"
	FormInvoice       = "invoice"
)

// Order statuses, as stored.
const (
	statusPending   = "待发货"
	statusShipped   = "已发货"
	statusDelivered = "已签收"
	statusRefunding = "退款中"
	statusRefunded  = "已退款"
	statusCancelled = "已取消"
)

// Skill is the order_lookup skill. Safe for concurrent use.
type Skill struct {
	db *store.DB
}

var _ skill.Skill = (*Skill)(nil)

// New returns the skill reading db (which must have been opened with the
// set {MigrationComponent, Migrations()}) and writing cancellations and
// address changes through db.Write. It does no I/O.
func New(db *store.DB) *Skill { return &Skill{db: db} }

// Name returns "order_lookup".
func (s *Skill) Name() string { return Name }

// CanHandle accepts every answer and submit, and validation of the
// order_id, order_no and tracking_no slots.
func (s *Skill) CanHandle(req *skill.Request) bool {
	if req == nil {
		return false
	}
	if req.Purpose == skill.Validate {
		return req.Slot == slotOrderID || req.Slot == slotOrderNo || req.Slot == slotTracking
	}
	return true
}

// Slot and entity names the skill reads.
const (
	slotOrderID   = "order_id"
	slotOrderNo   = "order_no" // the rule extractor's entity type
	slotTracking  = "tracking_no"
	slotReason    = "reason"
	slotAddress   = "address"
	slotTitle     = "invoice_title"
	slotTaxID     = "tax_id"
	slotRequested = "requested_slot"
)

// Handle answers by req.Purpose. It returns an error only when the
// database fails; unknown and missing numbers are replies.
func (s *Skill) Handle(ctx context.Context, req *skill.Request) (*skill.Response, error) {
	if req == nil {
		return nil, errors.New("order_lookup: nil request")
	}
	var (
		resp *skill.Response
		err  error
	)
	switch req.Purpose {
	case skill.Validate:
		resp, err = s.validate(ctx, req)
	case skill.Submit:
		resp, err = s.submit(ctx, req)
	case skill.Answer, "":
		resp, err = s.answer(ctx, req)
	default:
		return nil, fmt.Errorf("order_lookup: unknown purpose %q", req.Purpose)
	}
	if err != nil {
		return nil, fmt.Errorf("order_lookup: %w", err)
	}
	return resp, nil
}

// kind says what a number in a message probably is.
type kind int

const (
	kindUnknown  kind = iota // bare digits: an order or a digits-only tracking number
	kindOrder                // named as an order
	kindTracking             // named as a tracking number, or shaped like one
)

type number struct {
	no   string
	kind kind
}

// numberPattern finds order and tracking numbers in normalized, upper-cased
// text. It is wider than the NLU's rule extractor on purpose (SF with 10
// digits, bare 12-20 digit runs), because a miss here means asking the
// customer again.
var numberPattern = regexp.MustCompile(`SF\d{10,15}|JD[A-Z]{0,2}\d{8,15}|YT\d{10,15}|JT\d{10,15}|E[A-Z]\d{9}[A-Z]{2}|\d{12,20}`)

var trackingShape = regexp.MustCompile(`^(SF\d{10,15}|JD[A-Z]{0,2}\d{8,15}|YT\d{10,15}|JT\d{10,15}|E[A-Z]\d{9}[A-Z]{2})$`)

// clean upper-cases a number and drops spaces and dashes.
func clean(s string) string {
	s = rules.Normalize(s).Text
	return strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(s))
}

func classify(no string, named kind) kind {
	if named != kindUnknown {
		return named
	}
	if trackingShape.MatchString(no) {
		return kindTracking
	}
	return kindUnknown
}

// numbers lists the order and tracking numbers of a request, the current
// message first (entities, then the text itself), then the slots.
func numbers(req *skill.Request) []number {
	var out []number
	add := func(v string, named kind) {
		v = clean(v)
		if v == "" || slices.ContainsFunc(out, func(n number) bool { return n.no == v }) {
			return
		}
		out = append(out, number{no: v, kind: classify(v, named)})
	}
	for _, e := range req.Entities {
		v := e.Normalized
		if v == "" {
			v = e.Value
		}
		switch e.Type {
		case slotTracking:
			add(v, kindTracking)
		case slotOrderID, slotOrderNo:
			add(v, kindOrder)
		}
	}
	text := strings.ToUpper(rules.Normalize(req.Text).Text)
	for _, m := range numberPattern.FindAllString(text, -1) {
		add(m, kindUnknown)
	}
	if v := req.Slots[slotTracking]; v != "" {
		add(v, kindTracking)
	}
	for _, k := range []string{slotOrderID, slotOrderNo} {
		if v := req.Slots[k]; v != "" {
			add(v, kindOrder)
		}
	}
	return out
}

// reply is a response with one text.
func reply(format string, args ...any) *skill.Response {
	return &skill.Response{Replies: []skill.Reply{{Text: fmt.Sprintf(format, args...)}}}
}

func (s *Skill) answer(ctx context.Context, req *skill.Request) (*skill.Response, error) {
	nums := numbers(req)
	if req.Intent == IntentTrackParcel {
		if len(nums) == 0 {
			return reply("请把快递单号或订单号发给我，我马上帮您查物流。快递单号在订单详情或发货短信里，例如顺丰单号以 SF 开头。"), nil
		}
		return s.track(ctx, nums[0])
	}
	n, o, err := s.firstOrder(ctx, nums)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return reply("请提供您的订单号，我来帮您查询。%s。", orderHint), nil
	}
	if o == nil {
		return notFoundOrder(n.no), nil
	}
	switch req.Intent {
	case IntentRefundStatus:
		return refundAnswer(o), nil
	case IntentCancelOrder:
		return s.cancel(ctx, o)
	}
	return reply("%s", summary(o)), nil
}

// firstOrder resolves the first number that names an order: an order
// number, or a tracking number an order shipped with. It returns the number
// it tried (nil when there is none) and the order (nil when not found).
func (s *Skill) firstOrder(ctx context.Context, nums []number) (*number, *order, error) {
	var first *number
	for i := range nums {
		n := &nums[i]
		if first == nil {
			first = n
		}
		var o *order
		var err error
		if n.kind == kindTracking {
			o, err = s.orderByTracking(ctx, n.no)
		} else {
			o, err = s.order(ctx, n.no)
		}
		if err != nil || o != nil {
			return n, o, err
		}
	}
	return first, nil, nil
}

func (s *Skill) track(ctx context.Context, n number) (*skill.Response, error) {
	if n.kind != kindOrder {
		p, err := s.parcel(ctx, n.no)
		if err != nil || p != nil {
			return parcelAnswer(p, ""), err
		}
	}
	if n.kind != kindTracking {
		o, err := s.order(ctx, n.no)
		if err != nil {
			return nil, err
		}
		if o != nil {
			return s.trackOrder(ctx, o)
		}
	}
	switch n.kind {
	case kindOrder:
		return notFoundOrder(n.no), nil
	case kindTracking:
		return reply("没有查到快递单号 %s 的物流信息。%s，请核对后再发给我；如果单号没错，可能是刚下单还没有揽收，请稍后再查，或者回复“转人工”。", n.no, carrierHint(n.no)), nil
	}
	return reply("没有查到 %s 对应的订单或包裹。%s；%s。请核对后再发给我，或者回复“转人工”。", n.no, orderHint, carrierHint(n.no)), nil
}

func (s *Skill) trackOrder(ctx context.Context, o *order) (*skill.Response, error) {
	switch {
	case o.status == statusPending:
		return reply("订单 %s 还没有发货，我们会在付款后48小时内发出，发货后就能查到物流了。", o.id), nil
	case o.trackingNo == "":
		return reply("订单 %s %s，没有物流信息。", o.id, o.status), nil
	}
	p, err := s.parcel(ctx, o.trackingNo)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return reply("订单 %s 已交给%s，单号 %s，暂时还没有物流轨迹，一般揽收后几个小时内更新，请稍后再查。", o.id, o.carrier, o.trackingNo), nil
	}
	return parcelAnswer(p, o.id), nil
}

// parcelAnswer describes a parcel; forOrder names the order it belongs to.
func parcelAnswer(p *parcel, forOrder string) *skill.Response {
	if p == nil {
		return nil
	}
	var b strings.Builder
	if forOrder != "" {
		fmt.Fprintf(&b, "订单 %s 的", forOrder)
	} else {
		b.WriteString("您的")
	}
	fmt.Fprintf(&b, "%s快递 %s ", p.carrier, p.trackingNo)
	switch p.status {
	case "已签收":
		fmt.Fprintf(&b, "已签收（%s，%s）。如果您没有收到包裹，请回复“转人工”，我们帮您核实。", strings.TrimPrefix(p.location, "已签收，"), p.updatedAt)
	case "派送中":
		fmt.Fprintf(&b, "正在派送中：%s（%s），请保持电话畅通。", p.location, p.updatedAt)
	case "异常":
		fmt.Fprintf(&b, "出现异常：%s（%s）。回复“转人工”可以马上为您处理。", p.location, p.updatedAt)
	default:
		fmt.Fprintf(&b, "目前%s：%s（%s）。", p.status, p.location, p.updatedAt)
		if p.eta != "" {
			fmt.Fprintf(&b, "预计 %s 送达。", p.eta)
		}
	}
	return reply("%s", b.String())
}

func refundAnswer(o *order) *skill.Response {
	if o.refundStatus == "" {
		return reply("订单 %s 目前没有退款申请（订单状态：%s）。如需退款，可以对我说“我要退货”或“取消订单”。", o.id, o.status)
	}
	return reply("订单 %s 的退款进度：%s。", o.id, o.refundStatus)
}

func (s *Skill) cancel(ctx context.Context, o *order) (*skill.Response, error) {
	switch o.status {
	case statusPending:
		refund := fmt.Sprintf("订单已取消，%s 将在1-3个工作日内原路退回", yuan(o.amountCents))
		var n int64
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.Exec(`UPDATE demo_orders SET status = ?, refund_status = ? WHERE order_id = ? AND status = ?`,
				statusCancelled, refund, o.id, statusPending)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("cancel order: %w", err)
		}
		if n == 0 { // shipped or cancelled meanwhile: explain what it is now
			cur, err := s.order(ctx, o.id)
			if err != nil || cur == nil {
				return nil, errors.Join(fmt.Errorf("cancel order: order %s changed meanwhile", o.id), err)
			}
			return s.cancel(ctx, cur)
		}
		return reply("已为您取消订单 %s，实付 %s 将在1-3个工作日内原路退回。", o.id, yuan(o.amountCents)), nil
	case statusShipped:
		return reply("订单 %s 已经发货（%s %s），无法直接取消。您可以在快递送达时拒收，或签收后申请退货。", o.id, o.carrier, o.trackingNo), nil
	case statusDelivered:
		return reply("订单 %s 已签收，无法取消。如需退货，请对我说“我要退货”。", o.id), nil
	case statusCancelled:
		return reply("订单 %s 已经取消了，无需重复操作。%s。", o.id, o.refundStatus), nil
	default: // 退款中, 已退款
		return reply("订单 %s 正在退款或已退款（%s），不需要再取消。", o.id, o.refundStatus), nil
	}
}

func summary(o *order) string {
	var b strings.Builder
	fmt.Fprintf(&b, "订单 %s（%s 下单）：%s，实付 %s，状态：%s。", o.id, day(o.createdAt), o.items, yuan(o.amountCents), o.status)
	if o.trackingNo != "" {
		fmt.Fprintf(&b, "物流：%s %s。", o.carrier, o.trackingNo)
	}
	if o.refundStatus != "" {
		fmt.Fprintf(&b, "退款：%s。", o.refundStatus)
	}
	return b.String()
}

const orderHint = "订单号是以年份开头的14位数字（例如 20241234567890），可以在「我的订单」里找到"

func notFoundOrder(no string) *skill.Response {
	return reply("没有找到订单 %s。%s。请核对后再发给我，或者回复“转人工”。", no, orderHint)
}

// carrierHint says what a valid tracking number of the carrier the number
// looks like it belongs to looks like.
func carrierHint(no string) string {
	switch {
	case strings.HasPrefix(no, "SF"):
		return "顺丰单号是 SF 开头加数字（例如 SF1234567890）"
	case strings.HasPrefix(no, "JD"):
		return "京东单号是 JD 开头（常见 JDVA、JDVB）加11-15位数字"
	case strings.HasPrefix(no, "YT"):
		return "圆通单号是 YT 开头加13位数字"
	case strings.HasPrefix(no, "JT"):
		return "极兔单号是 JT 开头加13位数字"
	case len(no) == 13 && no[0] == 'E':
		return "EMS 单号形如 EA123456789CN"
	case strings.Trim(no, "0123456789") == "":
		return "中通、申通、韵达的单号是12-15位纯数字"
	}
	return "快递单号一般是字母开头加数字（顺丰 SF、京东 JD、圆通 YT），或12-15位纯数字"
}

func yuan(cents int64) string { return fmt.Sprintf("¥%d.%02d", cents/100, cents%100) }

// day is the date part of a stored timestamp.
func day(ts string) string {
	d, _, _ := strings.Cut(ts, " ")
	return d
}

func (s *Skill) validate(ctx context.Context, req *skill.Request) (*skill.Response, error) {
	no := clean(req.Value)
	if no == "" {
		return invalid("请输入单号，例如订单号 20241234567890 或快递单号 SF1234567890。"), nil
	}
	var resp *skill.Response
	switch req.Slot {
	case slotTracking:
		p, err := s.parcel(ctx, no)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return invalid("没有查到快递单号 %s。%s，请核对后重新输入。", no, carrierHint(no)), nil
		}
		resp = &skill.Response{}
	case slotOrderID, slotOrderNo:
		o, err := s.order(ctx, no)
		if err != nil {
			return nil, err
		}
		if o == nil {
			return invalid("没有找到订单 %s，%s。请核对后重新输入。", no, orderHint), nil
		}
		if r := formRefuses(req.Form, o); r != nil {
			return r, nil
		}
		resp = &skill.Response{}
	default:
		return &skill.Response{}, nil
	}
	if no != req.Value {
		resp.Slots = map[string]*string{req.Slot: &no}
	}
	return resp, nil
}

// formRefuses says why an existing order cannot go through the form, or nil.
func formRefuses(form string, o *order) *skill.Response {
	switch form {
	case FormChangeAddress:
		if o.status != statusPending {
			return invalid("订单 %s %s，收货地址已无法在线修改。已发货的订单可以联系快递员（%s %s）改派，或回复“转人工”。", o.id, o.status, o.carrier, o.trackingNo)
		}
	case FormReturnGoods:
		switch o.status {
		case statusPending:
			return invalid("订单 %s 还没有发货，不需要退货，直接对我说“取消订单”就可以全额退款。", o.id)
		case statusCancelled, statusRefunded, statusRefunding:
			return invalid("订单 %s %s（%s），不能再申请退货。", o.id, o.status, o.refundStatus)
		}
	case FormInvoice:
		if o.status == statusCancelled || o.status == statusRefunded {
			return invalid("订单 %s %s，无法开具发票。", o.id, o.status)
		}
	}
	return nil
}

func invalid(format string, args ...any) *skill.Response {
	r := reply(format, args...)
	no := false
	r.Valid = &no
	return r
}

func (s *Skill) submit(ctx context.Context, req *skill.Request) (*skill.Response, error) {
	id := clean(req.Slots[slotOrderID])
	if id == "" {
		id = clean(req.Slots[slotOrderNo])
	}
	switch req.Form {
	case FormReturnGoods:
		reason := orDefault(req.Slots[slotReason], "未填写")
		if id == "" {
			return reply("退货申请已提交，原因：%s。客服会在1个工作日内联系您确认订单。", reason), nil
		}
		return reply("退货申请已提交，退货单号 R%s。订单：%s，原因：%s。我们会在1个工作日内审核，通过后短信通知您寄回地址。", id, id, reason), nil
	case FormChangeAddress:
		return s.changeAddress(ctx, id, strings.TrimSpace(req.Slots[slotAddress]))
	case FormInvoice:
		title := orDefault(req.Slots[slotTitle], "个人")
		msg := fmt.Sprintf("发票申请已提交：订单 %s，抬头“%s”", id, title)
		if tax := strings.TrimSpace(req.Slots[slotTaxID]); tax != "" {
			msg += "，税号 " + tax
		}
		return reply("%s。电子发票会在1-3个工作日内开具，开好后可在订单详情里下载。", msg), nil
	}
	return reply("%s", genericSubmit(req)), nil
}

func orDefault(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

// genericSubmit confirms a form the skill does not know, listing its slots.
func genericSubmit(req *skill.Request) string {
	keys := make([]string, 0, len(req.Slots))
	for k, v := range req.Slots {
		if k != slotRequested && strings.TrimSpace(v) != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "：" + req.Slots[k]
	}
	if len(parts) == 0 {
		return fmt.Sprintf("您的申请（%s）已提交。", req.Form)
	}
	return fmt.Sprintf("您的申请（%s）已提交：%s。", req.Form, strings.Join(parts, "，"))
}

func (s *Skill) changeAddress(ctx context.Context, id, address string) (*skill.Response, error) {
	if id == "" {
		return reply("请提供要修改地址的订单号，%s。", orderHint), nil
	}
	if address == "" {
		return reply("请告诉我新的收货地址（省市区、详细地址、收件人和电话）。"), nil
	}
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE demo_orders SET address = ? WHERE order_id = ? AND status = ?`, address, id, statusPending)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("change address: %w", err)
	}
	if n == 1 {
		return reply("已将订单 %s 的收货地址修改为：%s。我们会按新地址发货。", id, address), nil
	}
	o, err := s.order(ctx, id)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return notFoundOrder(id), nil
	}
	if o.trackingNo != "" {
		return reply("订单 %s %s，收货地址已无法在线修改。建议直接联系快递员改派（%s %s），或回复“转人工”。", id, o.status, o.carrier, o.trackingNo), nil
	}
	return reply("订单 %s %s，收货地址无需修改。", id, o.status), nil
}
