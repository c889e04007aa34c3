package moodle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// consumerError is an error of the caller's function, passed through a
// streamed read untouched and never retried.
type consumerError struct{ err error }

func (e *consumerError) Error() string { return e.err.Error() }
func (e *consumerError) Unwrap() error { return e.err }

// streamed sends a read and hands its answer to consume as it arrives, so
// that a large answer (every user of a site) is never held whole. The
// answer gets the checks Call gives it (status, error page, Moodle
// exception) before consume sees any of it; a body that breaks off or
// stops being JSON while consume reads it is a *TransientError, and the
// read is sent again like any other (consume must cope with seeing the
// same items again). An error consume wraps in consumerError ends the read
// and is returned as is.
func (c *Client) streamed(ctx context.Context, function string, f *form, consume func(*json.Decoder) error) error {
	err := c.retrying(ctx, function, true, func() error { return c.streamOnce(ctx, function, f, consume) })
	var ce *consumerError
	if errors.As(err, &ce) {
		return ce.err
	}
	return err
}

// maxErrorBody bounds what is read of an answer that is not the JSON
// expected: enough to describe an error page or decode an exception.
const maxErrorBody = 1 << 20

func (c *Client) streamOnce(ctx context.Context, function string, f *form, consume func(*json.Decoder) error) error {
	if err := c.acquire(ctx, function); err != nil {
		return err
	}
	defer c.release()
	start := time.Now()
	outcome, err := c.streamBody(ctx, function, f, consume)
	c.observe(function, outcome, time.Since(start))
	c.log.LogAttrs(ctx, slog.LevelDebug, "moodle request", slog.String("instance", c.name), slog.String("function", function),
		slog.Int("vars", f.vars), slog.String("outcome", outcome), slog.Duration("duration", time.Since(start)), slog.Bool("streamed", true))
	return err
}

func (c *Client) streamBody(ctx context.Context, function string, f *form, consume func(*json.Decoder) error) (string, error) {
	resp, err := c.http.R().
		SetContext(ctx).
		SetDoNotParseResponse(true).
		SetHeader("Content-Type", "application/x-www-form-urlencoded").
		SetBody(f.b).
		Post(c.endpoint)
	if err != nil {
		return c.failed(ctx, function, err)
	}
	raw := resp.RawBody()
	defer raw.Close()
	status := resp.StatusCode()
	if status < 200 || status >= 300 {
		head, _ := io.ReadAll(io.LimitReader(raw, maxErrorBody))
		return c.checkStatus(function, status, resp.Header(), head)
	}
	br := bufio.NewReaderSize(raw, 64<<10)
	// The start of the answer says what it is: Moodle's exception object,
	// an error page, or the JSON object expected.
	if err := skipPrefix(br); err != nil {
		return c.streamFailed(ctx, function, status, err)
	}
	first, _ := br.Peek(len(`{"exception"`))
	switch {
	case len(first) == 0:
		return OutcomeTransient, c.transient(function, status, "empty body", 0, nil)
	case first[0] == '<':
		head, _ := io.ReadAll(io.LimitReader(br, maxErrorBody))
		return OutcomeTransient, c.transient(function, status, "body is not JSON"+describe(head), 0, nil)
	case first[0] != '{':
		return OutcomeTransient, c.transient(function, status, "body is not a JSON object", 0, nil)
	case bytes.Equal(first, []byte(`{"exception"`)):
		body, _ := io.ReadAll(io.LimitReader(br, maxErrorBody))
		if me := c.exception(function, body); me != nil {
			return OutcomeMoodleError, me
		}
		return OutcomeTransient, c.transient(function, status, "body is not complete JSON", 0, nil)
	}
	dec := json.NewDecoder(br)
	if err := consume(dec); err != nil {
		var ce *consumerError
		if errors.As(err, &ce) {
			return OutcomeOK, err
		}
		var me *Error
		if errors.As(err, &me) {
			return OutcomeMoodleError, err
		}
		return c.streamFailed(ctx, function, status, err)
	}
	// Nothing may follow the object, as json.Valid would insist.
	if _, err := dec.Token(); err != io.EOF {
		return OutcomeTransient, c.transient(function, status, "body is not complete JSON (text after the answer)", 0, nil)
	}
	return OutcomeOK, nil
}

// streamFailed names a body that broke off or stopped being JSON.
func (c *Client) streamFailed(ctx context.Context, function string, status int, err error) (string, error) {
	if ctx.Err() != nil {
		return OutcomeCanceled, fmt.Errorf("calling %s: %w", function, ctx.Err())
	}
	return OutcomeTransient, c.transient(function, status, "body is not complete JSON", 0, err)
}

// skipPrefix skips a byte-order mark and white space before the answer.
func skipPrefix(br *bufio.Reader) error {
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return br.UnreadByte()
		}
	}
}

// objectMembers walks the members of the JSON object dec is at, calling
// member with each name; member decodes (or skips) the value.
func objectMembers(dec *json.Decoder, member func(name string) error) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := t.(string)
		if !ok {
			return fmt.Errorf("expected a member name, got %v", t)
		}
		if err := member(name); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

// arrayItems walks the JSON array dec is at, calling item for each element;
// item decodes the value. A JSON null stands for an empty array.
func arrayItems(dec *json.Decoder, item func() error) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("expected an array, got %v", t)
	}
	for dec.More() {
		if err := item(); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %v, got %v", want, t)
	}
	return nil
}

// skipValue reads and drops the value dec is at.
func skipValue(dec *json.Decoder) error {
	var v json.RawMessage
	return dec.Decode(&v)
}
