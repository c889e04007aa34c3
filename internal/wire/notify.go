package wire

import (
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/notify"
)

// Notify is the mail relay and recipients of notify.*.
func Notify(cfg *config.Config) notify.Options {
	s := cfg.Notify.SMTP
	return notify.Options{
		Relay: notify.Relay{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: s.From, StartTLS: s.StartTLS},
		To:    cfg.Notify.To,
	}
}
