package rules

import (
	"testing"
	"time"
)

// The reference time of these tests is testNow: Sunday 2026-11-22
// 10:17:43 in Asia/Shanghai.

func TestDates(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"今天", []string{"date:今天=2026-11-22"}},
		{"明天能到吗", []string{"date:明天=2026-11-23"}},
		{"后天", []string{"date:后天=2026-11-24"}},
		{"大后天", []string{"date:大后天=2026-11-25"}},
		{"昨天", []string{"date:昨天=2026-11-21"}},
		{"前天", []string{"date:前天=2026-11-20"}},
		{"大前天", []string{"date:大前天=2026-11-19"}},
		{"明日", []string{"date:明日=2026-11-23"}},
		// Weeks are Monday-based; today is a Sunday.
		{"下周一", []string{"date:下周一=2026-11-23"}},
		{"下星期三", []string{"date:下星期三=2026-11-25"}},
		{"下个礼拜五", []string{"date:下个礼拜五=2026-11-27"}},
		{"这周五", []string{"date:这周五=2026-11-20"}},
		{"本周五", []string{"date:本周五=2026-11-20"}},
		{"上周五", []string{"date:上周五=2026-11-13"}},
		{"下下周三", []string{"date:下下周三=2026-12-02"}},
		{"周三", []string{"date:周三=2026-11-25"}},
		{"星期天", []string{"date:星期天=2026-11-22"}},
		{"周日", []string{"date:周日=2026-11-22"}},
		{"星期5", []string{"date:星期5=2026-11-27"}},
		{"周末", []string{"date:周末=2026-11-28"}},
		{"下周末", []string{"date:下周末=2026-11-28"}},
		{"下个月5号", []string{"date:下个月5号=2026-12-05"}},
		{"本月30日", []string{"date:本月30日=2026-11-30"}},
		{"上个月20号", []string{"date:上个月20号=2026-10-20"}},
		{"3月5日", []string{"date:3月5日=2027-03-05"}},
		{"3月5号", []string{"date:3月5号=2027-03-05"}},
		{"十二月二十五日", []string{"date:十二月二十五日=2026-12-25"}},
		{"11月22号", []string{"date:11月22号=2026-11-22"}},
		{"2026年3月5日", []string{"date:2026年3月5日=2026-03-05"}},
		{"二〇二六年三月五日", []string{"date:二〇二六年三月五日=2026-03-05"}},
		{"明年2月28号", []string{"date:明年2月28号=2027-02-28"}},
		{"去年12月1日", []string{"date:去年12月1日=2025-12-01"}},
		{"2026-03-05", []string{"date:2026-03-05=2026-03-05"}},
		{"2026/3/5", []string{"date:2026/3/5=2026-03-05"}},
		{"2026.03.05", []string{"date:2026.03.05=2026-03-05"}},
		{"25号到", []string{"date:25号=2026-11-25"}},
		{"5号", []string{"date:5号=2026-12-05"}},
		{"31号", []string{"date:31号=2026-12-31"}},
		{"周五之前", []string{"date:周五之前=2026-11-27"}},
		{"今天下午", []string{"date:今天下午=2026-11-22"}},
		{"今天周三", []string{"date:今天=2026-11-22", "date:周三=2026-11-25"}},
		// Not dates.
		{"之后天气不错", nil},
		{"2月30日", nil},
		{"明年2月29号", nil},
		{"2026-13-01", nil},
		{"每周一", nil},
		{"1号线", nil},
		{"3号楼", nil},
		{"第5号", nil},
		{"周8", nil},
		{"3.5", nil},
		{"建国路8号", nil},
		{"明后天", nil},
		{"星期几", nil},
		{"下周发货", nil},
	})
}

func TestTimes(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		// A time alone is its next occurrence; it is 10:17 now.
		{"上午十点", []string{"time:上午十点=2026-11-22T10:00:00+08:00"}}, // the current hour has not passed
		{"上午九点", []string{"time:上午九点=2026-11-23T09:00:00+08:00"}},
		{"上午十一点", []string{"time:上午十一点=2026-11-22T11:00:00+08:00"}},
		{"下午三点半", []string{"time:下午三点半=2026-11-22T15:30:00+08:00"}},
		{"15:30", []string{"time:15:30=2026-11-22T15:30:00+08:00"}},
		{"8:05", []string{"time:8:05=2026-11-22T20:05:00+08:00"}},
		{"12:30:45", []string{"time:12:30:45=2026-11-22T12:30:45+08:00"}},
		{"三点", []string{"time:三点=2026-11-22T15:00:00+08:00"}},
		{"三点钟", []string{"time:三点钟=2026-11-22T15:00:00+08:00"}},
		{"十点", []string{"time:十点=2026-11-22T10:00:00+08:00"}},
		{"九点", []string{"time:九点=2026-11-22T21:00:00+08:00"}},
		{"三点一刻", []string{"time:三点一刻=2026-11-22T15:15:00+08:00"}},
		{"三点三刻", []string{"time:三点三刻=2026-11-22T15:45:00+08:00"}},
		{"十点零五分", []string{"time:十点零五分=2026-11-22T22:05:00+08:00"}},
		{"十一点二十", []string{"time:十一点二十=2026-11-22T11:20:00+08:00"}},
		{"3点05", []string{"time:3点05=2026-11-22T15:05:00+08:00"}},
		{"3点5分", []string{"time:3点5分=2026-11-22T15:05:00+08:00"}},
		{"3点", []string{"time:3点=2026-11-22T15:00:00+08:00"}},
		{"15时30分", []string{"time:15时30分=2026-11-22T15:30:00+08:00"}},
		{"十时五分", []string{"time:十时五分=2026-11-22T22:05:00+08:00"}},
		{"中午12点", []string{"time:中午12点=2026-11-22T12:00:00+08:00"}},
		{"中午一点", []string{"time:中午一点=2026-11-22T13:00:00+08:00"}},
		{"晚上八点", []string{"time:晚上八点=2026-11-22T20:00:00+08:00"}},
		{"晚上十二点", []string{"time:晚上十二点=2026-11-23T00:00:00+08:00"}},
		{"凌晨三点", []string{"time:凌晨三点=2026-11-23T03:00:00+08:00"}},
		{"零点", []string{"time:零点=2026-11-23T00:00:00+08:00"}},
		{"一点半", []string{"time:一点半=2026-11-22T13:30:00+08:00"}},
		{"5点半前", []string{"time:5点半前=2026-11-22T17:30:00+08:00"}},
		// Ranges share the day and period of their start.
		{"下午3点到5点", []string{"time:下午3点=2026-11-22T15:00:00+08:00", "time:5点=2026-11-22T17:00:00+08:00"}},
		{"9:00-11:00", []string{"time:9:00=2026-11-22T09:00:00+08:00", "time:11:00=2026-11-22T11:00:00+08:00"}}, // still open
		{"工作时间9:00-18:00", []string{"time:9:00=2026-11-22T09:00:00+08:00", "time:18:00=2026-11-22T18:00:00+08:00"}},
		{"7:00-9:00", []string{"time:7:00=2026-11-22T19:00:00+08:00", "time:9:00=2026-11-22T21:00:00+08:00"}},
		{"晚上11点到12点", []string{"time:晚上11点=2026-11-22T23:00:00+08:00", "time:12点=2026-11-23T00:00:00+08:00"}},
		{"24:00", []string{"time:24:00=2026-11-23T00:00:00+08:00"}},
		{"24点前", []string{"time:24点前=2026-11-23T00:00:00+08:00"}},
		// Not times.
		{"便宜一点", nil},
		{"差一点", nil},
		{"一点儿", nil},
		{"三点水", nil},
		{"同时", nil},
		{"一时半会", nil},
		{"一点多", nil},
		{"下午两三点", nil},
		{"25点", nil},
		{"3点70分", []string{"time:3点=2026-11-22T15:00:00+08:00"}},
		{"24:30", nil},
		{"25:00", nil},
		{"123:45", nil},
		{"12:345", nil},
	})
}

func TestDateTimes(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"明天下午三点", []string{"datetime:明天下午三点=2026-11-23T15:00:00+08:00"}},
		{"明天下午三点前能送到吗", []string{"datetime:明天下午三点前=2026-11-23T15:00:00+08:00"}},
		{"周一下午三点", []string{"datetime:周一下午三点=2026-11-23T15:00:00+08:00"}},
		{"后天下午两点半左右", []string{"datetime:后天下午两点半左右=2026-11-24T14:30:00+08:00"}},
		{"今晚8点", []string{"datetime:今晚8点=2026-11-22T20:00:00+08:00"}},
		{"明早九点", []string{"datetime:明早九点=2026-11-23T09:00:00+08:00"}},
		{"今天晚上十二点", []string{"datetime:今天晚上十二点=2026-11-23T00:00:00+08:00"}},
		{"明天凌晨两点", []string{"datetime:明天凌晨两点=2026-11-23T02:00:00+08:00"}},
		{"3月5日下午3点", []string{"datetime:3月5日下午3点=2027-03-05T15:00:00+08:00"}},
		{"2026年12月1日 上午9:30", []string{"datetime:2026年12月1日 上午9:30=2026-12-01T09:30:00+08:00"}},
		{"2026/3/5 15:30", []string{"datetime:2026/3/5 15:30=2026-03-05T15:30:00+08:00"}},
		{"2026-03-05T15:30:00", []string{"datetime:2026-03-05T15:30:00=2026-03-05T15:30:00+08:00"}},
		{"请于2026年12月1日24:00前付款", []string{"datetime:2026年12月1日24:00前=2026-12-02T00:00:00+08:00"}},
		{"下周三上午十点", []string{"datetime:下周三上午十点=2026-11-25T10:00:00+08:00"}},
		// Today without a period: the hour that has not passed.
		{"今天三点", []string{"datetime:今天三点=2026-11-22T15:00:00+08:00"}},
		{"今天十一点", []string{"datetime:今天十一点=2026-11-22T11:00:00+08:00"}},
		// Another day without a period: the hour as written, ambiguous.
		{"明天三点", []string{"datetime:明天三点=2026-11-23T03:00:00+08:00"}},
		{"明天15点", []string{"datetime:明天15点=2026-11-23T15:00:00+08:00"}},
		{"明天晚上九点到十点", []string{"datetime:明天晚上九点=2026-11-23T21:00:00+08:00", "datetime:十点=2026-11-23T22:00:00+08:00"}},
		{"明天上午10点到下午2点", []string{"datetime:明天上午10点=2026-11-23T10:00:00+08:00", "datetime:下午2点=2026-11-23T14:00:00+08:00"}},
	})
}

func TestDurations(t *testing.T) {
	runCases(t, mustNew(t, Config{}), []extractCase{
		{"半小时后", []string{"datetime:半小时后=2026-11-22T10:47:43+08:00"}},
		{"半个小时以后", []string{"datetime:半个小时以后=2026-11-22T10:47:43+08:00"}},
		{"两小时后", []string{"datetime:两小时后=2026-11-22T12:17:43+08:00"}},
		{"两个小时后", []string{"datetime:两个小时后=2026-11-22T12:17:43+08:00"}},
		{"一个半小时后", []string{"datetime:一个半小时后=2026-11-22T11:47:43+08:00"}},
		{"1.5小时后", []string{"datetime:1.5小时后=2026-11-22T11:47:43+08:00"}},
		{"10分钟内", []string{"datetime:10分钟内=2026-11-22T10:27:43+08:00"}},
		{"一刻钟后", []string{"datetime:一刻钟后=2026-11-22T10:32:43+08:00"}},
		{"30秒后", []string{"datetime:30秒后=2026-11-22T10:18:13+08:00"}},
		{"三天后", []string{"datetime:三天后=2026-11-25T10:17:43+08:00"}},
		{"3天之后", []string{"datetime:3天之后=2026-11-25T10:17:43+08:00"}},
		{"两天内发货", []string{"datetime:两天内=2026-11-24T10:17:43+08:00"}},
		{"两周前", []string{"datetime:两周前=2026-11-08T10:17:43+08:00"}},
		{"一个月后", []string{"datetime:一个月后=2026-12-22T10:17:43+08:00"}},
		{"半个月后", []string{"datetime:半个月后=2026-12-07T10:17:43+08:00"}},
		{"一年半后", []string{"datetime:一年半后=2028-05-22T10:17:43+08:00"}},
		// Durations without a direction are not points in time.
		{"两个小时", nil},
		{"三天", nil},
		{"三月后", nil}, // "March", not "three months"
		{"0天后", nil},
	})
}

func TestDateTimeAttrs(t *testing.T) {
	e := mustNew(t, Config{})
	tests := []struct {
		text  string
		conf  float64
		attrs map[string]string
	}{
		{"明天下午三点前", 1, map[string]string{"grain": "hour", "period": "afternoon", "modifier": "before"}},
		{"三点半", 1, map[string]string{"grain": "minute"}},
		{"12:30:45", 1, map[string]string{"grain": "second"}},
		{"明天", 1, map[string]string{"grain": "day"}},
		{"今天下午", 1, map[string]string{"grain": "day", "period": "afternoon"}},
		{"明天三点", 0.8, map[string]string{"grain": "hour", "ampm": "ambiguous"}},
		{"5号", 0.9, map[string]string{"grain": "day"}},
		{"10分钟内", 1, map[string]string{"grain": "minute", "modifier": "within"}},
		{"三天后", 1, map[string]string{"grain": "day"}},
		{"两点左右", 1, map[string]string{"grain": "hour", "modifier": "around"}},
	}
	for _, tt := range tests {
		ents := e.Extract(tt.text, testNow)
		if len(ents) != 1 {
			t.Errorf("%s: %+v", tt.text, ents)
			continue
		}
		if ents[0].Confidence != tt.conf || len(ents[0].Attrs) != len(tt.attrs) {
			t.Errorf("%s: confidence %v attrs %v, want %v %v", tt.text, ents[0].Confidence, ents[0].Attrs, tt.conf, tt.attrs)
			continue
		}
		for k, v := range tt.attrs {
			if ents[0].Attrs[k] != v {
				t.Errorf("%s: Attrs[%s] = %q, want %q", tt.text, k, ents[0].Attrs[k], v)
			}
		}
	}
	ents := e.Extract("下午3点到5点", testNow)
	if len(ents) != 2 || ents[0].Attrs["range"] != "start" || ents[1].Attrs["range"] != "end" || ents[1].Attrs["period"] != "afternoon" {
		t.Errorf("range attrs: %+v", ents)
	}
}

func TestTimeZones(t *testing.T) {
	// 2026-11-22 18:30 UTC is already 2026-11-23 02:30 in Shanghai.
	now := time.Date(2026, 11, 22, 18, 30, 0, 0, time.UTC)
	e := mustNew(t, Config{})
	if got := summary(e.Extract("明天", now)); len(got) != 1 || got[0] != "date:明天=2026-11-24" {
		t.Errorf("Shanghai: %q", got)
	}
	e = mustNew(t, Config{TimeZone: "UTC"})
	if got := summary(e.Extract("明天下午三点", now)); len(got) != 1 || got[0] != "datetime:明天下午三点=2026-11-23T15:00:00Z" {
		t.Errorf("UTC: %q", got)
	}
	// Across a daylight-saving change the wall clock is kept: New York
	// leaves DST on 2026-11-01.
	e = mustNew(t, Config{TimeZone: "America/New_York"})
	now = time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC) // 08:00 EDT
	if got := summary(e.Extract("明天上午九点", now)); len(got) != 1 || got[0] != "datetime:明天上午九点=2026-11-01T09:00:00-05:00" {
		t.Errorf("New York: %q", got)
	}
}

func TestNextOccurrence(t *testing.T) {
	e := mustNew(t, Config{})
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  time.Time
		text string
		want string
	}{
		{time.Date(2026, 11, 22, 15, 0, 30, 0, loc), "三点", "2026-11-22T15:00:00+08:00"}, // this hour has not passed
		{time.Date(2026, 11, 22, 16, 0, 0, 0, loc), "三点", "2026-11-23T03:00:00+08:00"},
		{time.Date(2026, 11, 22, 16, 0, 0, 0, loc), "下午三点", "2026-11-23T15:00:00+08:00"},
		{time.Date(2026, 11, 22, 23, 59, 0, 0, loc), "23:59", "2026-11-22T23:59:00+08:00"},
		{time.Date(2026, 12, 31, 12, 0, 0, 0, loc), "1月1号", "2027-01-01"},
		{time.Date(2026, 12, 31, 12, 0, 0, 0, loc), "明天", "2027-01-01"},
		{time.Date(2026, 1, 31, 12, 0, 0, 0, loc), "下个月5号", "2026-02-05"},
		{time.Date(2026, 1, 31, 12, 0, 0, 0, loc), "下个月30号", ""},                             // February has no 30th
		{time.Date(2026, 1, 31, 12, 0, 0, 0, loc), "30号", "2026-03-30"},                      // next month that has one
		{time.Date(2027, 3, 1, 12, 0, 0, 0, loc), "2月29号", "2028-02-29"},                     // next leap year
		{time.Date(2026, 11, 23, 9, 0, 0, 0, loc), "周一", "2026-11-23"},                       // today is Monday
		{time.Date(2026, 11, 23, 9, 0, 0, 0, loc), "下周一", "2026-11-30"},                      // next week's
		{time.Date(2026, 11, 23, 9, 0, 0, 0, loc), "这周日", "2026-11-29"},                      // this week's
		{time.Date(2026, 11, 23, 9, 0, 0, 0, loc), "周末", "2026-11-28"},                       // coming Saturday
		{time.Date(2026, 11, 23, 9, 0, 0, 0, loc), "上午十点到十一点半", "2026-11-23T10:00:00+08:00"}, // first of the range
	}
	for _, tt := range tests {
		ents := e.Extract(tt.text, tt.now)
		got := ""
		if len(ents) > 0 {
			got = ents[0].Normalized
		}
		if got != tt.want {
			t.Errorf("%s at %s: %q, want %q", tt.text, tt.now.Format(time.DateTime), got, tt.want)
		}
	}
}
