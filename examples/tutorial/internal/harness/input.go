package harness

// snippet:begin orders
// Orders are the tutorial's orders, keyed by order id, in the order they
// are written. o-8 and o-10 come late: written after orders with later
// event times.
var Orders = []Input{
	{Topic: "orders", Key: "o-1", Value: `{"customer":"alice","item":"book","cents":1250}`, Time: At("09:00:05")},
	{Topic: "orders", Key: "o-2", Value: `{"customer":"bob","item":"pen","cents":300}`, Time: At("09:00:20")},
	{Topic: "orders", Key: "o-3", Value: `{"customer":"carol","item":"lamp","cents":4599}`, Time: At("09:00:40")},
	{Topic: "orders", Key: "o-4", Value: `{"customer":"alice","item":"mug","cents":850}`, Time: At("09:00:55")},
	{Topic: "orders", Key: "o-5", Value: `{"customer":"bob","item":"chair","cents":12900}`, Time: At("09:01:10")},
	{Topic: "orders", Key: "o-6", Value: `{"customer":"alice","item":"desk","cents":25000}`, Time: At("09:01:30")},
	{Topic: "orders", Key: "o-7", Value: `{"customer":"carol","item":"pen","cents":300}`, Time: At("09:01:45")},
	{Topic: "orders", Key: "o-8", Value: `{"customer":"bob","item":"book","cents":1250}`, Time: At("09:00:50")},
	{Topic: "orders", Key: "o-9", Value: `{"customer":"carol","item":"book","cents":1250}`, Time: At("09:02:05")},
	{Topic: "orders", Key: "o-10", Value: `{"customer":"dave","item":"mug","cents":850}`, Time: At("09:01:58")},
	{Topic: "orders", Key: "o-11", Value: `{"customer":"alice","item":"pen","cents":300}`, Time: At("09:03:30")},
}

// snippet:end orders

// snippet:begin customers
// Customers are the rows of the customers table, keyed by customer. Bob
// moves up to gold at 09:01:00; dave has no row.
var Customers = []Input{
	{Topic: "customers", Key: "alice", Value: `{"name":"Alice Liddell","tier":"gold"}`, Time: At("08:59:00")},
	{Topic: "customers", Key: "bob", Value: `{"name":"Bob Dylan","tier":"silver"}`, Time: At("08:59:00")},
	{Topic: "customers", Key: "carol", Value: `{"name":"Carol Shields","tier":"silver"}`, Time: At("08:59:00")},
	{Topic: "customers", Key: "bob", Value: `{"name":"Bob Dylan","tier":"gold"}`, Time: At("09:01:00")},
}

// snippet:end customers
