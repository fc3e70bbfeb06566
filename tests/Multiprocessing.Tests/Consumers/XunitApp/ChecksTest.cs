public class ChecksTest
{
    [Xunit.Fact]
    public async Task Workers_start_from_a_test_host()
    {
        Xunit.Assert.Contains("checks passed", await Checks.RunAsync());
    }
}
