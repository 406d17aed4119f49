package serde_test

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/streamwork-go/streamwork/serde"
)

// Int64 writes the same 8 big-endian bytes as Kafka's LongSerializer.
func Example_int64() {
	b, err := serde.Int64.Serialize("clicks", 42)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)

	n, err := serde.Int64.Deserialize("clicks", b)
	fmt.Println(n, err)

	_, err = serde.Int64.Deserialize("clicks", []byte{1, 2, 3})
	fmt.Println(errors.Is(err, serde.ErrInvalidLength), err)
	// Output:
	// 00 00 00 00 00 00 00 2a
	// 42 <nil>
	// true serde: invalid length: int64 needs 8 bytes, got 3
}

// JSON works for any type encoding/json handles.
func ExampleJSON() {
	type Click struct {
		User string `json:"user"`
		Page string `json:"page"`
	}
	clicks := serde.JSON[Click]()

	b, err := clicks.Serialize("clicks", Click{User: "ann", Page: "/home"})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))

	c, err := clicks.Deserialize("clicks", b)
	fmt.Printf("%+v %v\n", c, err)

	_, err = clicks.Deserialize("clicks", []byte("{oops"))
	fmt.Println(errors.Is(err, serde.ErrDecode))
	// Output:
	// {"user":"ann","page":"/home"}
	// {User:ann Page:/home} <nil>
	// true
}

// Func adapts a pair of functions; here, integers written as decimal text.
func ExampleFunc() {
	decimal := serde.Func(
		func(_ string, v int) ([]byte, error) {
			return strconv.AppendInt(nil, int64(v), 10), nil
		},
		func(_ string, b []byte) (int, error) {
			if b == nil { // Kafka null
				return 0, nil
			}
			return strconv.Atoi(string(b))
		},
	)

	b, _ := decimal.Serialize("counts", 1234)
	fmt.Printf("%q\n", b)

	n, err := decimal.Deserialize("counts", []byte("-56"))
	fmt.Println(n, err)
	// Output:
	// "1234"
	// -56 <nil>
}

// A DecodeError tells where a record that could not be decoded came from.
func ExampleDecodeError() {
	_, cause := serde.Int32.Deserialize("orders", []byte{0xff})
	var err error = &serde.DecodeError{Topic: "orders", Partition: 3, Offset: 42, Key: true, Err: cause}

	fmt.Println(err)
	var de *serde.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Partition, de.Offset, errors.Is(err, serde.ErrInvalidLength))
	}
	// Output:
	// serde: decode key of topic "orders" partition 3 offset 42: serde: invalid length: int32 needs 4 bytes, got 1
	// 3 42 true
}

// An Appender appends its encoding to a buffer: a key and a value in one
// allocation.
func ExampleAppender() {
	buf := make([]byte, 0, 16)
	buf, _ = serde.String.(serde.Appender[string]).Append(buf, "clicks", "ann")
	keyEnd := len(buf)
	buf, _ = serde.Int64.(serde.Appender[int64]).Append(buf, "clicks", 42)
	fmt.Printf("key %q, value % x\n", buf[:keyEnd], buf[keyEnd:])
	// Output:
	// key "ann", value 00 00 00 00 00 00 00 2a
}
