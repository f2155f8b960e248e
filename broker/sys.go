package broker

import (
	"math"
	"strconv"
	"time"

	"github.com/shoalmq/shoal/router"
)

// $SYS topics, in Mosquitto's naming, published every Config.SysInterval
// as retained QoS 0 messages, so that `mosquitto_sub -t '$SYS/#' -v` shows
// them at once. Clients subscribe to them like any topic; '#' and '+' at
// the first level do not match them [MQTT-4.7.2-1].

// sysPrefix starts every $SYS topic.
const sysPrefix = "$SYS/broker/"

// bridgeStatePrefix is where bridges publish their state
// ($SYS/broker/connection/<client id>/state, Mosquitto's convention):
// a Mosquitto bridging to Shoal publishes there and leaves its will there,
// so it is open to clients, unlike the rest of $SYS/broker/.
const bridgeStatePrefix = sysPrefix + "connection/"

// isSys reports whether topic is one of the broker's own $SYS topics.
func isSys(topic []byte) bool {
	return len(topic) >= len(sysPrefix) && string(topic[:len(sysPrefix)]) == sysPrefix &&
		!(len(topic) >= len(bridgeStatePrefix) && string(topic[:len(bridgeStatePrefix)]) == bridgeStatePrefix)
}

// loadAvg is an exponentially weighted moving average of a counter's rate
// per minute over a period, as Mosquitto's $SYS/broker/load topics.
type loadAvg struct {
	period time.Duration
	value  float64
}

// add folds in a rate (per minute) observed over dt.
func (a *loadAvg) add(perMinute float64, dt time.Duration) {
	k := math.Exp(-dt.Seconds() / a.period.Seconds())
	a.value = a.value*k + perMinute*(1-k)
}

// sysLoad tracks the load averages of one counter.
type sysLoad struct {
	name  string // topic under $SYS/broker/load/
	last  int64
	avg   [3]loadAvg
	value func(*Stats) int64
}

var loadPeriods = [3]struct {
	suffix string
	period time.Duration
}{{"1min", time.Minute}, {"5min", 5 * time.Minute}, {"15min", 15 * time.Minute}}

// sysLoop publishes the $SYS topics until the broker stops. It owns its
// load averages.
func (b *Broker) sysLoop() {
	loads := []*sysLoad{
		{name: "messages/received", value: (*Stats).MessagesIn},
		{name: "messages/sent", value: (*Stats).MessagesOut},
		{name: "bytes/received", value: func(s *Stats) int64 { return s.BytesReceived }},
		{name: "bytes/sent", value: func(s *Stats) int64 { return s.BytesSent }},
		{name: "connections", value: func(s *Stats) int64 { return s.Connects }},
	}
	for _, l := range loads {
		for i := range l.avg {
			l.avg[i].period = loadPeriods[i].period
		}
	}
	t := time.NewTicker(b.cfg.SysInterval)
	defer t.Stop()
	last := time.Now()
	b.publishSys(loads, 0)
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.publishSys(loads, now.Sub(last))
			last = now
		}
	}
}

// publishSys publishes every $SYS topic once; dt is the time since the
// last round (0 the first time: no load yet).
func (b *Broker) publishSys(loads []*sysLoad, dt time.Duration) {
	st := b.Stats()
	pub := func(topic, value string) {
		m := router.NewMessage([]byte(sysPrefix+topic), []byte(value), nil, nil, 0, true, 0, nil)
		if !b.submit(job{m: m}) {
			m.Release() // the router is full: the next round will do
		}
	}
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	pub("version", "shoal "+st.Version)
	pub("uptime", itoa(int64(st.Uptime/time.Second))+" seconds")
	pub("clients/connected", itoa(st.ClientsConnected))
	pub("clients/total", itoa(int64(st.Sessions)))
	pub("clients/disconnected", itoa(int64(st.Sessions)-st.ClientsConnected))
	pub("messages/received", itoa(st.MessagesIn()))
	pub("messages/sent", itoa(st.MessagesOut()))
	pub("messages/inflight", itoa(int64(st.Inflight)))
	pub("messages/stored", itoa(int64(st.Queued)))
	pub("publish/messages/received", itoa(st.MessagesIn()))
	pub("publish/messages/sent", itoa(st.MessagesOut()))
	pub("bytes/received", itoa(st.BytesReceived))
	pub("bytes/sent", itoa(st.BytesSent))
	pub("subscriptions/count", itoa(int64(st.Subscriptions)))
	pub("retained messages/count", itoa(int64(st.Retained)))
	for _, l := range loads {
		v := l.value(&st)
		if dt > 0 {
			perMinute := float64(v-l.last) / dt.Minutes()
			for i := range l.avg {
				l.avg[i].add(perMinute, dt)
			}
		}
		l.last = v
		for i, p := range loadPeriods {
			pub("load/"+l.name+"/"+p.suffix, strconv.FormatFloat(l.avg[i].value, 'f', 2, 64))
		}
	}
}
