package apisix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// APIError is an Admin API answer other than success. Its message names the
// object, the HTTP status and APISIX's error_msg; it never contains the API key.
type APIError struct {
	// Method is the HTTP method of the request.
	Method string
	// Object is the resource, e.g. `route "fledge.default.web"`.
	Object string
	// StatusCode is the HTTP status APISIX answered.
	StatusCode int
	// Message is APISIX's error_msg (or message) from the response body.
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("apisix admin %s %s: HTTP %d: %s", e.Method, e.Object, e.StatusCode, msg)
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// kind is an Admin API resource collection.
type kind string

const (
	kindRoute    kind = "routes"
	kindUpstream kind = "upstreams"
)

func (k kind) object(id string) string {
	return fmt.Sprintf("%s %q", strings.TrimSuffix(string(k), "s"), id)
}

// object is an Admin API object as stored: top-level fields kept raw, so fields
// fledge does not manage survive a read-modify-write unchanged.
type object map[string]json.RawMessage

// serverFields are set by APISIX and must not be sent back (APISIX 3 refuses
// create_time and update_time in request bodies).
var serverFields = []string{"id", "create_time", "update_time"}

// adminClient talks to the APISIX Admin API v3.
type adminClient struct {
	base   *url.URL // ends in /apisix/admin
	apiKey string
	http   *http.Client
}

// listed is one object of a list answer.
type listed struct {
	ID    string
	Value object
}

// get returns the object, or an *APIError with StatusCode 404 when it does not exist.
func (c *adminClient) get(ctx context.Context, k kind, id string) (object, error) {
	var env struct {
		Value object `json:"value"`
	}
	if err := c.do(ctx, http.MethodGet, k, id, nil, &env); err != nil {
		return nil, err
	}
	if env.Value == nil {
		return nil, fmt.Errorf("apisix admin GET %s: answer has no value", k.object(id))
	}
	return env.Value, nil
}

func (c *adminClient) put(ctx context.Context, k kind, id string, body object) error {
	return c.do(ctx, http.MethodPut, k, id, body, nil)
}

// delete deletes the object; a missing object is not an error.
func (c *adminClient) delete(ctx context.Context, k kind, id string) error {
	err := c.do(ctx, http.MethodDelete, k, id, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

// list returns every object of kind k.
func (c *adminClient) list(ctx context.Context, k kind) ([]listed, error) {
	var env struct {
		List json.RawMessage `json:"list"`
	}
	if err := c.do(ctx, http.MethodGet, k, "", nil, &env); err != nil {
		return nil, err
	}
	// Some APISIX releases encode an empty list as {} (an empty Lua table).
	trimmed := bytes.TrimSpace(env.List)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) || bytes.Equal(trimmed, []byte("{}")) {
		return nil, nil
	}
	var items []struct {
		Key   string `json:"key"`
		Value object `json:"value"`
	}
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, fmt.Errorf("apisix admin GET %s: decoding list: %w", k, err)
	}
	out := make([]listed, 0, len(items))
	for _, it := range items {
		id := objectID(it.Value)
		if id == "" {
			id = path.Base(it.Key)
		}
		out = append(out, listed{ID: id, Value: it.Value})
	}
	return out, nil
}

// objectID reads the "id" field, a string or a number.
func objectID(o object) string {
	raw, ok := o["id"]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	return ""
}

func (c *adminClient) do(ctx context.Context, method string, k kind, id string, body, out any) error {
	u := c.base.JoinPath(string(k))
	obj := string(k)
	if id != "" {
		u = u.JoinPath(id)
		obj = k.object(id)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("apisix admin %s %s: encoding body: %w", method, obj, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("apisix admin %s %s: %w", method, obj, err)
	}
	req.Header.Set("X-API-KEY", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The key travels only in a header, so the *url.Error here cannot contain it.
		return fmt.Errorf("apisix admin %s %s: %w", method, obj, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("apisix admin %s %s: reading answer: %w", method, obj, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Object: obj, StatusCode: resp.StatusCode, Message: c.errorMessage(data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("apisix admin %s %s: decoding answer: %w", method, obj, err)
	}
	return nil
}

// errorMessage extracts APISIX's error_msg (or message) from an error answer.
func (c *adminClient) errorMessage(data []byte) string {
	var e struct {
		ErrorMsg string `json:"error_msg"`
		Message  string `json:"message"`
	}
	msg := ""
	if err := json.Unmarshal(data, &e); err == nil {
		msg = e.ErrorMsg
		if msg == "" {
			msg = e.Message
		}
	} else {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
	}
	// Defence in depth: never let the key through, even if something echoed it.
	if c.apiKey != "" {
		msg = strings.ReplaceAll(msg, c.apiKey, "[redacted]")
	}
	return msg
}
